/* Compiled with the usage requirements of one layer only
 * (tests/layering/CMakeLists.txt): includes core's own header. */
#include "kb.h"

int kb__layering_core_includes_core(void);
int kb__layering_core_includes_core(void)
{
    return 0;
}
