/* Compiled with the usage requirements of one layer only
 * (tests/layering/CMakeLists.txt): includes a header of core, below sandbox. */
#include "kb.h"

int kb__layering_sandbox_includes_core(void);
int kb__layering_sandbox_includes_core(void)
{
    return 0;
}
