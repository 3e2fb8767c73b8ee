/* 8 threads, each spinning with known values in r12, r13 and xmm0 (and
 * checking them on every turn), plus main waiting in sigwait. The image
 * must hold 9 threads with those register values; after the snapshot
 * every thread must still see its own values and have kept counting. */
#include "zdtm.h"

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#define NT 8

static volatile int stop;
static volatile uint64_t turns[NT];
static int ok[NT];

static uint64_t r12_of(int i) { return 0xC0DE000000000000ull | (uint64_t)i; }
static uint64_t x0_of(int i) { return 0x5EC7000000000000ull | ((uint64_t)i << 8) | 0x55; }

static void *spin(void *arg)
{
	int i = (int)(intptr_t)arg, res;
	uint64_t a = r12_of(i), x = x0_of(i);
	volatile uint64_t *cnt = &turns[i];

	asm volatile(
		"movq %[a], %%r12\n\t"
		"movq %[a], %%r13\n\t"
		"notq %%r13\n\t"
		"movq %[x], %%xmm0\n\t"
		"1:\n\t"
		"cmpq %[a], %%r12\n\t"
		"jne 2f\n\t"
		"movq %%xmm0, %%rax\n\t"
		"cmpq %[x], %%rax\n\t"
		"jne 2f\n\t"
		"movq %%r13, %%rax\n\t"
		"notq %%rax\n\t"
		"cmpq %[a], %%rax\n\t"
		"jne 2f\n\t"
		"incq (%[cnt])\n\t"
		"pause\n\t"
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"movl $1, %[res]\n\t"
		"jmp 3f\n\t"
		"2:\n\t"
		"movl $0, %[res]\n\t"
		"3:\n\t"
		: [res] "=&r" (res)
		: [a] "r" (a), [x] "r" (x), [cnt] "r" (cnt), [stop] "m" (stop)
		: "rax", "r12", "r13", "xmm0", "memory", "cc");
	ok[i] = res;
	return NULL;
}

int main(void)
{
	pthread_t t[NT];
	uint64_t before[NT];

	zdtm_block_usr2();
	for (int i = 0; i < NT; i++)
		if (pthread_create(&t[i], NULL, spin, (void *)(intptr_t)i))
			zdtm_fail("pthread_create");
	for (int i = 0; i < NT; i++)
		while (!turns[i])
			usleep(1000);
	for (int i = 0; i < NT; i++)
		zdtm_say("r12 %d 0x%llx\nxmm0 %d 0x%llx\n", i, (unsigned long long)r12_of(i), i,
			 (unsigned long long)x0_of(i));
	zdtm_ready_wait();
	for (int i = 0; i < NT; i++)
		before[i] = turns[i];
	/* A loaded machine may not run every thread within a few ms. */
	for (int i = 0; i < NT; i++) {
		for (int w = 0; w < 200 && turns[i] == before[i]; w++)
			usleep(10000);
		zdtm_check(turns[i] > before[i], "thread %d stopped counting", i);
	}
	stop = 1;
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		zdtm_check(ok[i], "thread %d saw its registers change", i);
	}
	zdtm_pass();
}
