#include <stdio.h>

int main(void)
{
	puts("cryo " CRYO_VERSION);
	return 0;
}
