/* A spin that checks the flags and registers it just set, an instruction
 * later: a thread stopped and put back (ptrace, injection, a melt) with a
 * flag or a register wrong takes the "bad" exit. Shared by the workloads
 * that check it (sweep_workload, test_proc_heal). */
#ifndef CRYO_TEST_REGSPIN_H
#define CRYO_TEST_REGSPIN_H

/* 20,000 rounds; 1 if any saw a flag or register wrong. */
static inline int regspin(void)
{
	unsigned long bad = 0;

	__asm__ volatile(
		"movabs $0x1122334455667788, %%r12\n\t"
		"mov %%r12, %%r13\n\t"
		"movabs $0x0f1e2d3c4b5a6978, %%r14\n\t"
		"mov %%r14, %%r15\n\t"
		"mov $20000, %%ecx\n"
		"1:\n\t"
		"mov %%r12, %%rax\n\t"
		"sub %%r13, %%rax\n\t"
		"jnz 8f\n\t"
		"jc 8f\n\t"
		"mov %%r14, %%rax\n\t"
		"cmp %%r15, %%rax\n\t"
		"jne 8f\n\t"
		"xor %%eax, %%eax\n\t"
		"sub $1, %%rax\n\t"
		"jz 8f\n\t"
		"jns 8f\n\t"
		"jnc 8f\n\t"
		"jo 8f\n\t"
		"jnp 8f\n\t"
		"movabs $0x7fffffffffffffff, %%rax\n\t"
		"add $1, %%rax\n\t"
		"jno 8f\n\t"
		"jns 8f\n\t"
		"jc 8f\n\t"
		"jz 8f\n\t"
		"dec %%ecx\n\t"
		"jnz 1b\n\t"
		"jmp 9f\n"
		"8:\n\t"
		"mov $1, %0\n"
		"9:\n"
		: "+r"(bad)
		:
		: "rax", "rcx", "r12", "r13", "r14", "r15", "cc");
	return bad != 0;
}

#endif
