package numbers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DivisorsTest {
    @Test
    void greatestCommonDivisor() {
        assertEquals(6, Divisors.gcd(54, 24));
    }

    @Test
    void leastCommonMultiple() {
        assertEquals(12, Divisors.lcm(4, 6));
    }
}
