#include <stdio.h>

int main(void)
{
    puts("tandem " TD_VERSION);
    return 0;
}
