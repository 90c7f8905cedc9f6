package calendar;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class YearsTest {
    @Test
    void centuriesDivisibleBy400AreLeap() {
        assertEquals(366, Years.daysIn(2000));
    }

    @Test
    void otherCenturiesAreNot() {
        assertEquals(365, Years.daysIn(1900));
    }

    @Test
    void everyFourthYear() {
        assertEquals(366, Years.daysIn(2024));
    }
}
