package calendar;

public final class Years {
    private Years() {}

    public static boolean isLeap(int year) {
        return year % 4 == 0 && year % 100 != 0;
    }

    public static int daysIn(int year) {
        return isLeap(year) ? 366 : 365;
    }
}
