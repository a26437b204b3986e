/* Compiled with the usage requirements of one layer only
 * (tests/layering/CMakeLists.txt): includes the session's header; report sits beside session, not above it. */
#include "session.h"

int kb__layering_report_includes_session(void);
int kb__layering_report_includes_session(void)
{
    return 0;
}
