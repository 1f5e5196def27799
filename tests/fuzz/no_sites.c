/*
 * no_sites.c - a program that includes errinj.h but has no point of its own, as a server
 * whose points all live in a plugin would. Built with clang -fsanitize=undefined by
 * no_sites.sh: loading it must not trip UBSan.
 */
#include <errinj.h>

#include <stdio.h>

int main(void)
{
    printf("loaded: %s\n", errinj_strerror(0));
    return 0;
}
