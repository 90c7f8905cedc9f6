#include <cassert>
#include <cstring>
#include "tally.hpp"

static void test_total() {
    Tally tally;
    tally.add(4);
    tally.add(5);
    assert(tally.total() == 9);
}

static void test_empty() {
    Tally tally;
    assert(tally.total() == 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "total") == 0) test_total();
    if (argc > 1 && std::strcmp(argv[1], "empty") == 0) test_empty();
    return 0;
}
