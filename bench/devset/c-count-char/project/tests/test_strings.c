#include <assert.h>
#include <string.h>
#include "strings.h"

static void test_counts(void) { assert(count_char("banana", 'a') == 3); }

static void test_first(void) { assert(count_char("apple", 'a') == 1); }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "counts") == 0) test_counts();
    if (argc > 1 && strcmp(argv[1], "first") == 0) test_first();
    return 0;
}
