/*
 * regs: CPU register state kept only in registers across the checkpoint.
 *
 * usage: regs [-t N] MODE, MODE one of
 *   gpr     rbx rcx rdx rsi rdi r8-r15 hold known values, DF (rflags) set
 *   x87     st0-st7 hold known 80-bit values, x87 control word changed
 *   sse     xmm0-15 hold known values, MXCSR changed
 *   avx     ymm0-15 (full 256 bits) hold known values          (needs AVX)
 *   avx512  zmm0-31 and k0-k7 hold known values               (needs AVX-512F)
 *   pkru    PKRU holds a non-default value                     (needs PKU/OSPKE)
 * Every thread (main and the N-1 workers) loads its own distinct values in a
 * tight asm loop that spins until the SIGTERM handler flips wl_stop (signal
 * delivery saves and restores the registers, so the values survive), then
 * stores the registers and compares. In every mode each thread also checks its
 * TLS variables and fs base (arch_prctl ARCH_GET_FS == pthread_self()) and that
 * gs base is unchanged.
 */
#include "wl.h"
#include <asm/prctl.h>
#include <cpuid.h>
#include <stddef.h>
#include <ucontext.h>

static __thread uint64_t tls_a;
static __thread char tls_s[32];
static uint64_t fs_before[WL_MAX_THREADS], gs_before[WL_MAX_THREADS];
static volatile int *volatile spinning[WL_MAX_THREADS]; /* -> ctx.spin */

static unsigned long get_base(int code)
{
	unsigned long v = 0;
	syscall(SYS_arch_prctl, code, &v);
	return v;
}

static uint64_t xgetbv0(void)
{
	uint32_t eax, edx;
	__asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
	return ((uint64_t)edx << 32) | eax;
}

static int have_osxsave(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & bit_OSXSAVE) != 0;
}

static const char *unsupported(const char *mode)
{
	unsigned a, b, c, d;
	if (strcmp(mode, "avx") == 0) {
		if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AVX))
			return "cpu has no AVX";
		if (!have_osxsave() || (xgetbv0() & 0x6) != 0x6)
			return "OS has not enabled AVX state (XCR0)";
	} else if (strcmp(mode, "avx512") == 0) {
		if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512F))
			return "cpu has no avx512f";
		if (!have_osxsave() || (xgetbv0() & 0xe6) != 0xe6)
			return "OS has not enabled AVX-512 state (XCR0)";
	} else if (strcmp(mode, "pkru") == 0) {
		if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 3)))
			return "cpu has no PKU";
		if (!(c & (1u << 4)))
			return "OS has not enabled protection keys (OSPKE)";
	}
	return NULL;
}

static uint64_t val64(int idx, int reg, int word)
{
	return wl_pat(0xC0FFEE + (uint64_t)idx * 1000 + (uint64_t)reg, (uint64_t)word);
}

/* ---------------------------------------------------------------- gpr */

struct gpr_ctx {
	uint64_t in[13];  /* 0 */
	uint64_t out[14]; /* 104; out[13] = rflags */
	volatile int spin;
};
_Static_assert(offsetof(struct gpr_ctx, out) == 104, "layout");

static const char *gpr_names[13] = {"rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9",
				    "r10", "r11", "r12", "r13", "r14", "r15"};

static void hold_gpr(int idx)
{
	struct gpr_ctx c;
	for (int i = 0; i < 13; i++)
		c.in[i] = val64(idx, i, 0);
	memset(c.out, 0, sizeof(c.out));
	c.spin = 0;
	spinning[idx] = &c.spin;
	__asm__ volatile(
	    "mov 0(%%rax), %%rbx\n\t"
	    "mov 8(%%rax), %%rcx\n\t"
	    "mov 16(%%rax), %%rdx\n\t"
	    "mov 24(%%rax), %%rsi\n\t"
	    "mov 32(%%rax), %%rdi\n\t"
	    "mov 40(%%rax), %%r8\n\t"
	    "mov 48(%%rax), %%r9\n\t"
	    "mov 56(%%rax), %%r10\n\t"
	    "mov 64(%%rax), %%r11\n\t"
	    "mov 72(%%rax), %%r12\n\t"
	    "mov 80(%%rax), %%r13\n\t"
	    "mov 88(%%rax), %%r14\n\t"
	    "mov 96(%%rax), %%r15\n\t"
	    "std\n\t"
	    "movl $1, %c[spoff](%%rax)\n\t"
	    "1: pause\n\t"
	    "cmpl $0, %[stop]\n\t"
	    "je 1b\n\t"
	    "mov %%rbx, 104(%%rax)\n\t"
	    "mov %%rcx, 112(%%rax)\n\t"
	    "mov %%rdx, 120(%%rax)\n\t"
	    "mov %%rsi, 128(%%rax)\n\t"
	    "mov %%rdi, 136(%%rax)\n\t"
	    "mov %%r8, 144(%%rax)\n\t"
	    "mov %%r9, 152(%%rax)\n\t"
	    "mov %%r10, 160(%%rax)\n\t"
	    "mov %%r11, 168(%%rax)\n\t"
	    "mov %%r12, 176(%%rax)\n\t"
	    "mov %%r13, 184(%%rax)\n\t"
	    "mov %%r14, 192(%%rax)\n\t"
	    "mov %%r15, 200(%%rax)\n\t"
	    "lea -128(%%rsp), %%rsp\n\t" /* skip the red zone */
	    "pushfq\n\t"
	    "popq %%rbx\n\t"
	    "lea 128(%%rsp), %%rsp\n\t"
	    "mov %%rbx, 208(%%rax)\n\t"
	    "cld\n\t"
	    :
	    : "a"(&c), [spoff] "i"(offsetof(__typeof__(c), spin)), [stop] "m"(wl_stop)
	    : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	      "memory", "cc");
	for (int i = 0; i < 13; i++)
		CHECK(c.out[i] == c.in[i], "thread %d: %s = %#lx, want %#lx", idx, gpr_names[i],
		      (unsigned long)c.out[i], (unsigned long)c.in[i]);
	CHECK(c.out[13] & 0x400, "thread %d: rflags DF lost (rflags %#lx)", idx, (unsigned long)c.out[13]);
}

/* ---------------------------------------------------------------- x87 */

struct x87_ctx {
	long double in[8];  /* 0 */
	long double out[8]; /* 128 */
	uint16_t cw_in;     /* 256 */
	uint16_t cw_out;    /* 258 */
	volatile int spin;
};
_Static_assert(offsetof(struct x87_ctx, cw_in) == 256, "layout");

static void hold_x87(int idx)
{
	struct x87_ctx c;
	static const uint16_t defcw = 0x037f;
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 8; i++)
		c.in[i] = (long double)(idx + 1) * 1000.0L + (long double)(i + 1) / 3.0L;
	c.cw_in = 0x0f7f; /* round toward zero, 64-bit precision, all masked */
	spinning[idx] = &c.spin;
	__asm__ volatile(
	    "fldcw 256(%%rax)\n\t"
	    "fldt 0(%%rax)\n\t"
	    "fldt 16(%%rax)\n\t"
	    "fldt 32(%%rax)\n\t"
	    "fldt 48(%%rax)\n\t"
	    "fldt 64(%%rax)\n\t"
	    "fldt 80(%%rax)\n\t"
	    "fldt 96(%%rax)\n\t"
	    "fldt 112(%%rax)\n\t"
	    "movl $1, %c[spoff](%%rax)\n\t"
	    "1: pause\n\t"
	    "cmpl $0, %[stop]\n\t"
	    "je 1b\n\t"
	    "fstpt 128(%%rax)\n\t"
	    "fstpt 144(%%rax)\n\t"
	    "fstpt 160(%%rax)\n\t"
	    "fstpt 176(%%rax)\n\t"
	    "fstpt 192(%%rax)\n\t"
	    "fstpt 208(%%rax)\n\t"
	    "fstpt 224(%%rax)\n\t"
	    "fstpt 240(%%rax)\n\t"
	    "fnstcw 258(%%rax)\n\t"
	    "fldcw %[defcw]\n\t"
	    :
	    : "a"(&c), [spoff] "i"(offsetof(__typeof__(c), spin)), [stop] "m"(wl_stop), [defcw] "m"(defcw)
	    : "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", "memory", "cc");
	for (int i = 0; i < 8; i++)
		CHECK(memcmp(&c.out[i], &c.in[7 - i], 10) == 0, "thread %d: st%d = %Lg, want %Lg", idx, i,
		      c.out[i], c.in[7 - i]);
	CHECK(c.cw_out == c.cw_in, "thread %d: x87 control word = %#x, want %#x", idx, c.cw_out, c.cw_in);
}

/* ---------------------------------------------------------------- sse */

#define LDX(i) "movdqu " #i "*16(%%rax), %%xmm" #i "\n\t"
#define STX(i) "movdqu %%xmm" #i ", 256+" #i "*16(%%rax)\n\t"

struct sse_ctx {
	uint64_t in[16][2];  /* 0 */
	uint64_t out[16][2]; /* 256 */
	uint32_t mxcsr_in;   /* 512 */
	uint32_t mxcsr_out;  /* 516 */
	volatile int spin;
};
_Static_assert(offsetof(struct sse_ctx, mxcsr_in) == 512, "layout");

static void hold_sse(int idx)
{
	struct sse_ctx c;
	static const uint32_t defmx = 0x1f80;
	memset(&c, 0, sizeof(c));
	for (int r = 0; r < 16; r++)
		for (int w = 0; w < 2; w++)
			c.in[r][w] = val64(idx, 100 + r, w);
	c.mxcsr_in = 0x1f80 | 0x6000 | 0x8000; /* round toward zero, flush to zero */
	spinning[idx] = &c.spin;
	__asm__ volatile(
	    "ldmxcsr 512(%%rax)\n\t"
	    LDX(0) LDX(1) LDX(2) LDX(3) LDX(4) LDX(5) LDX(6) LDX(7)
	    LDX(8) LDX(9) LDX(10) LDX(11) LDX(12) LDX(13) LDX(14) LDX(15)
	    "movl $1, %c[spoff](%%rax)\n\t"
	    "1: pause\n\t"
	    "cmpl $0, %[stop]\n\t"
	    "je 1b\n\t"
	    STX(0) STX(1) STX(2) STX(3) STX(4) STX(5) STX(6) STX(7)
	    STX(8) STX(9) STX(10) STX(11) STX(12) STX(13) STX(14) STX(15)
	    "stmxcsr 516(%%rax)\n\t"
	    "ldmxcsr %[defmx]\n\t"
	    :
	    : "a"(&c), [spoff] "i"(offsetof(__typeof__(c), spin)), [stop] "m"(wl_stop), [defmx] "m"(defmx)
	    : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
	      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
	for (int r = 0; r < 16; r++)
		CHECK(memcmp(c.out[r], c.in[r], 16) == 0, "thread %d: xmm%d = %016lx%016lx, want %016lx%016lx",
		      idx, r, (unsigned long)c.out[r][1], (unsigned long)c.out[r][0],
		      (unsigned long)c.in[r][1], (unsigned long)c.in[r][0]);
	CHECK(c.mxcsr_out == c.mxcsr_in, "thread %d: mxcsr = %#x, want %#x", idx, c.mxcsr_out, c.mxcsr_in);
}

/* ---------------------------------------------------------------- avx */

#define LDY(i) "vmovdqu " #i "*32(%%rax), %%ymm" #i "\n\t"
#define STY(i) "vmovdqu %%ymm" #i ", 512+" #i "*32(%%rax)\n\t"

struct avx_ctx {
	uint64_t in[16][4];  /* 0 */
	uint64_t out[16][4]; /* 512 */
	volatile int spin;
};

static void hold_avx(int idx)
{
	struct avx_ctx c;
	memset(&c, 0, sizeof(c));
	for (int r = 0; r < 16; r++)
		for (int w = 0; w < 4; w++)
			c.in[r][w] = val64(idx, 200 + r, w);
	spinning[idx] = &c.spin;
	__asm__ volatile(
	    LDY(0) LDY(1) LDY(2) LDY(3) LDY(4) LDY(5) LDY(6) LDY(7)
	    LDY(8) LDY(9) LDY(10) LDY(11) LDY(12) LDY(13) LDY(14) LDY(15)
	    "movl $1, %c[spoff](%%rax)\n\t"
	    "1: pause\n\t"
	    "cmpl $0, %[stop]\n\t"
	    "je 1b\n\t"
	    STY(0) STY(1) STY(2) STY(3) STY(4) STY(5) STY(6) STY(7)
	    STY(8) STY(9) STY(10) STY(11) STY(12) STY(13) STY(14) STY(15)
	    "vzeroupper\n\t"
	    :
	    : "a"(&c), [spoff] "i"(offsetof(__typeof__(c), spin)), [stop] "m"(wl_stop)
	    : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
	      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
	for (int r = 0; r < 16; r++) {
		if (memcmp(c.out[r], c.in[r], 16) != 0)
			wl_fail("thread %d: ymm%d low 128 bits = %016lx%016lx, want %016lx%016lx", idx, r,
				(unsigned long)c.out[r][1], (unsigned long)c.out[r][0],
				(unsigned long)c.in[r][1], (unsigned long)c.in[r][0]);
		if (memcmp(&c.out[r][2], &c.in[r][2], 16) != 0)
			wl_fail("thread %d: ymm%d high 128 bits = %016lx%016lx, want %016lx%016lx", idx, r,
				(unsigned long)c.out[r][3], (unsigned long)c.out[r][2],
				(unsigned long)c.in[r][3], (unsigned long)c.in[r][2]);
	}
}

/* ---------------------------------------------------------------- avx512 */

#define LDZ(i) "vmovdqu64 " #i "*64(%%rax), %%zmm" #i "\n\t"
#define STZ(i) "vmovdqu64 %%zmm" #i ", 2048+" #i "*64(%%rax)\n\t"
#define LDK(i) "kmovw 4096+" #i "*2(%%rax), %%k" #i "\n\t"
#define STK(i) "kmovw %%k" #i ", 4112+" #i "*2(%%rax)\n\t"

struct avx512_ctx {
	uint64_t in[32][8];  /* 0 */
	uint64_t out[32][8]; /* 2048 */
	uint16_t kin[8];     /* 4096 */
	uint16_t kout[8];    /* 4112 */
	volatile int spin;
};
_Static_assert(offsetof(struct avx512_ctx, kin) == 4096, "layout");
_Static_assert(offsetof(struct avx512_ctx, kout) == 4112, "layout");

__attribute__((target("avx512f"))) static void hold_avx512_asm(struct avx512_ctx *c)
{
	__asm__ volatile(
	    LDZ(0) LDZ(1) LDZ(2) LDZ(3) LDZ(4) LDZ(5) LDZ(6) LDZ(7)
	    LDZ(8) LDZ(9) LDZ(10) LDZ(11) LDZ(12) LDZ(13) LDZ(14) LDZ(15)
	    LDZ(16) LDZ(17) LDZ(18) LDZ(19) LDZ(20) LDZ(21) LDZ(22) LDZ(23)
	    LDZ(24) LDZ(25) LDZ(26) LDZ(27) LDZ(28) LDZ(29) LDZ(30) LDZ(31)
	    LDK(0) LDK(1) LDK(2) LDK(3) LDK(4) LDK(5) LDK(6) LDK(7)
	    "movl $1, %c[spoff](%%rax)\n\t"
	    "1: pause\n\t"
	    "cmpl $0, %[stop]\n\t"
	    "je 1b\n\t"
	    STZ(0) STZ(1) STZ(2) STZ(3) STZ(4) STZ(5) STZ(6) STZ(7)
	    STZ(8) STZ(9) STZ(10) STZ(11) STZ(12) STZ(13) STZ(14) STZ(15)
	    STZ(16) STZ(17) STZ(18) STZ(19) STZ(20) STZ(21) STZ(22) STZ(23)
	    STZ(24) STZ(25) STZ(26) STZ(27) STZ(28) STZ(29) STZ(30) STZ(31)
	    STK(0) STK(1) STK(2) STK(3) STK(4) STK(5) STK(6) STK(7)
	    "vzeroupper\n\t"
	    :
	    : "a"(c), [spoff] "i"(offsetof(struct avx512_ctx, spin)), [stop] "m"(wl_stop)
	    : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
	      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
	      "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",
	      "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "memory", "cc");
}

static void hold_avx512(int idx)
{
	static struct avx512_ctx ctxs[WL_MAX_THREADS];
	struct avx512_ctx *c = &ctxs[idx];
	for (int r = 0; r < 32; r++)
		for (int w = 0; w < 8; w++)
			c->in[r][w] = val64(idx, 300 + r, w);
	for (int k = 0; k < 8; k++)
		c->kin[k] = (uint16_t)val64(idx, 400 + k, 0);
	c->spin = 0;
	spinning[idx] = &c->spin;
	hold_avx512_asm(c);
	for (int r = 0; r < 32; r++)
		CHECK(memcmp(c->out[r], c->in[r], 64) == 0, "thread %d: zmm%d differs", idx, r);
	for (int k = 0; k < 8; k++)
		CHECK(c->kout[k] == c->kin[k], "thread %d: k%d = %#x, want %#x", idx, k, c->kout[k], c->kin[k]);
}

/* ---------------------------------------------------------------- pkru */

static uint32_t rdpkru(void)
{
	uint32_t eax, edx;
	__asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static void wrpkru(uint32_t v)
{
	__asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory");
}

static void hold_pkru(int idx)
{
	/* deny access/write for some keys >= 8 only; key 0 stays open */
	uint32_t orig = rdpkru();
	uint32_t want = 0x55550000u | ((uint32_t)(idx & 0xf) << 4);
	static volatile int on[WL_MAX_THREADS];
	wrpkru(want);
	on[idx] = 1;
	spinning[idx] = &on[idx];
	while (!wl_stop)
		wl_msleep(10);
	if (wl_corrupt)
		wrpkru(want ^ 0x100);
	uint32_t got = rdpkru();
	wrpkru(orig);
	CHECK(got == want, "thread %d: pkru = %#x, want %#x", idx, got, want);
}

/* ---------------------------------------------------------------- main */

struct mode {
	const char *name;
	void (*hold)(int idx);
};

static const struct mode modes[] = {
    {"gpr", hold_gpr}, {"x87", hold_x87}, {"sse", hold_sse},
    {"avx", hold_avx}, {"avx512", hold_avx512}, {"pkru", hold_pkru},
};
static const struct mode *mode;

static void setup_tls(int idx)
{
	tls_a = val64(idx, 999, 0);
	snprintf(tls_s, sizeof(tls_s), "tls of thread %d", idx);
	fs_before[idx] = get_base(ARCH_GET_FS);
	gs_before[idx] = get_base(ARCH_GET_GS);
	if (fs_before[idx] != (uint64_t)pthread_self())
		wl_die("thread %d: fs base %#lx != pthread_self %#lx", idx, (unsigned long)fs_before[idx],
		       (unsigned long)pthread_self());
}

static void check_tls(int idx)
{
	char want[32];
	uint64_t fs = get_base(ARCH_GET_FS), gs = get_base(ARCH_GET_GS);
	if (wl_corrupt)
		tls_a ^= 1;
	snprintf(want, sizeof(want), "tls of thread %d", idx);
	CHECK(tls_a == val64(idx, 999, 0), "thread %d: TLS variable = %#lx, want %#lx", idx,
	      (unsigned long)tls_a, (unsigned long)val64(idx, 999, 0));
	CHECK(strcmp(tls_s, want) == 0, "thread %d: TLS string = %.31s, want %s", idx, tls_s, want);
	CHECK(fs == fs_before[idx], "thread %d: fs base = %#lx, want %#lx", idx, (unsigned long)fs,
	      (unsigned long)fs_before[idx]);
	CHECK(fs == (uint64_t)pthread_self(), "thread %d: fs base %#lx != pthread_self %#lx", idx,
	      (unsigned long)fs, (unsigned long)pthread_self());
	CHECK(gs == gs_before[idx], "thread %d: gs base = %#lx, want %#lx", idx, (unsigned long)gs,
	      (unsigned long)gs_before[idx]);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	setup_tls(idx);
	wl_thread_started(idx);
	mode->hold(idx);
	wl_check_ids(idx);
	check_tls(idx);
	return NULL;
}

/*
 * WL_CORRUPT: damage the registers saved in the signal frame, as a restore
 * that loses register state would.
 */
static void term_handler(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
	(void)sig;
	(void)si;
	wl_stop = 1;
	if (!wl_corrupt)
		return;
	uc->uc_mcontext.gregs[REG_R12] ^= 1;
	uc->uc_mcontext.gregs[REG_RCX] ^= 1;
	uc->uc_mcontext.gregs[REG_EFL] &= ~0x400;
	if (fp) {
		uint32_t *sw = (uint32_t *)((char *)fp + 464);
		fp->_xmm[5].element[0] ^= 1;
		fp->_st[2].significand[0] ^= 1;
		fp->mxcsr ^= 0x2000;
		fp->cwd ^= 0x400;
		if (sw[0] == 0x46505853u) /* FP_XSTATE_MAGIC1: xsave frame */
			((unsigned char *)fp)[576 + 3 * 16] ^= 1; /* ymm3 high half */
	}
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	struct sigaction sa;
	const char *why;

	wl_init(argc, argv);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(wl_mode, modes[i].name) == 0)
			mode = &modes[i];
	if (!mode)
		wl_die("unknown mode '%s' (gpr, x87, sse, avx, avx512, pkru)", wl_mode);
	why = unsupported(mode->name);
	if (why)
		wl_skip("%s: %s", mode->name, why);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = term_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));

	setup_tls(0);
	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	for (int i = 1; i < wl_nthreads; i++) {
		for (int n = 0; n < 10000 && !(spinning[i] && *spinning[i]); n++)
			wl_msleep(1);
		if (!(spinning[i] && *spinning[i]))
			wl_die("thread %d does not spin", i);
	}
	/* main enters its own asm loop right after READY */
	wl_ready();
	mode->hold(0);
	wl_check_ids(0);
	check_tls(0);
	wl_join(th, wl_nthreads);
	return wl_finish();
}
