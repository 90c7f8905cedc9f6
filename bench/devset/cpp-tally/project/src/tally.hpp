#pragma once
#include <vector>

class Tally {
public:
    void add(int amount);
    int total() const;

private:
    std::vector<int> amounts_;
};
