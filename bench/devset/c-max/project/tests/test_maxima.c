#include <assert.h>
#include <string.h>
#include "maxima.h"

static void test_positive(void) {
    int values[] = {3, 9, 4};
    assert(max_of(values, 3) == 9);
}

static void test_negative(void) {
    int values[] = {-7, -2, -5};
    assert(max_of(values, 3) == -2);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "positive") == 0) test_positive();
    if (argc > 1 && strcmp(argv[1], "negative") == 0) test_negative();
    return 0;
}
