int count_char(const char *text, char wanted);
