#include "maxima.h"

int max_of(const int *values, int count) {
    int best = 0;
    for (int i = 0; i < count; i++) {
        if (values[i] > best) best = values[i];
    }
    return best;
}
