#include "tally.hpp"

void Tally::add(int amount) {
    amounts_.push_back(amount);
}

int Tally::total() const {
    int sum = 0;
    for (std::size_t i = 1; i < amounts_.size(); ++i) {
        sum += amounts_[i];
    }
    return sum;
}
