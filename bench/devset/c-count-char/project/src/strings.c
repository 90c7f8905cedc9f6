#include "strings.h"

int count_char(const char *text, char wanted) {
    int count = 0;
    for (int i = 1; text[i] != '\0'; i++) {
        if (text[i] == wanted) count++;
    }
    return count;
}
