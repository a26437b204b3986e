/* Compiled with the usage requirements of one layer only
 * (tests/layering/CMakeLists.txt): includes the trial's result type, below report. */
#include "verdict.h"

int kb__layering_report_includes_trial(void);
int kb__layering_report_includes_trial(void)
{
    return 0;
}
