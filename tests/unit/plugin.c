/* plugin.c - a shared library with its own point, loaded by test_registry with dlopen(). */
#include <errinj.h>

bool plugin_enter(void);

bool plugin_enter(void)
{
    return ERRINJ_ENTER("plugin_point");
}
