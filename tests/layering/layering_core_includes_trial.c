/* Compiled with the usage requirements of one layer only
 * (tests/layering/CMakeLists.txt): includes a header of the trial layer, above core. */
#include "trial.h"

int kb__layering_core_includes_trial(void);
int kb__layering_core_includes_trial(void)
{
    return 0;
}
