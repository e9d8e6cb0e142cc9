//go:build amd64 && !purego

#include "textflag.h"

// The kernels of the AVX2 evaluator (see native_vec.go). They use AVX2
// (VPBROADCASTB and the 256-bit integer instructions) and POPCNT; useAVX2
// is set only when haveAVX2 finds both. Each ends with VZEROUPPER, so that
// SSE code run afterwards pays no state-transition penalty.

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// The QUANT macros leave in cnt the count of borders below the float32 at
// src, by quantizeColumn's two-level search with comparison predicate pred,
// for each shape of table (see fillTable): 8 pivots and nodes of 8 borders
// (up to 63 borders), 8 pivots and nodes of 16 (127), 16 and 16 (255). DI
// points to node 1, Y14 (and Y15) hold the pivots. v, a and b are scratch
// vector registers, t a scratch register.
//
// A comparison result is 0 or -1 per float. For 16 of them, VPACKSSDW
// folds two results into one register of 16-bit halves and VPMOVMSKB turns
// that into two mask bits per float, so POPCNTL yields twice the count
// without a separate VMOVMSKPS, shift and OR for each half.
#define QUANT8x8(pred, src, v, a, b, cnt, t) \
	VBROADCASTSS src, v; \
	VCMPPS pred, Y14, v, a; \
	VMOVMSKPS a, cnt; \
	POPCNTL cnt, cnt; \
	SHLQ $5, cnt; \
	VCMPPS pred, (DI)(cnt*1), v, a; \
	VMOVMSKPS a, t; \
	POPCNTL t, t; \
	SHRQ $2, cnt; \
	ADDQ t, cnt

#define QUANT8x16(pred, src, v, a, b, cnt, t) \
	VBROADCASTSS src, v; \
	VCMPPS pred, Y14, v, a; \
	VMOVMSKPS a, cnt; \
	POPCNTL cnt, cnt; \
	SHLQ $6, cnt; \
	VCMPPS pred, (DI)(cnt*1), v, a; \
	VCMPPS pred, 32(DI)(cnt*1), v, b; \
	VPACKSSDW b, a, a; \
	VPMOVMSKB a, t; \
	POPCNTL t, t; \
	SHRQ $2, cnt; \
	SHRQ $1, t; \
	ADDQ t, cnt

#define QUANT16x16(pred, src, v, a, b, cnt, t) \
	VBROADCASTSS src, v; \
	VCMPPS pred, Y14, v, a; \
	VCMPPS pred, Y15, v, b; \
	VPACKSSDW b, a, a; \
	VPMOVMSKB a, cnt; \
	POPCNTL cnt, cnt; \
	SHLQ $5, cnt; \
	VCMPPS pred, (DI)(cnt*1), v, a; \
	VCMPPS pred, 32(DI)(cnt*1), v, b; \
	VPACKSSDW b, a, a; \
	VPMOVMSKB a, t; \
	POPCNTL t, t; \
	SHRQ $2, cnt; \
	SHRQ $1, t; \
	ADDQ t, cnt

// GT_OQ is "v > border", false for NaN; NLE_UQ is "not v <= border", the
// same for numbers and true for NaN.
#define GT_OQ $0x1e
#define NLE_UQ $0x16

// func quantizeColumn(x *float32, stride, n int, table *float32, kind int, max int, dst *byte)
//
// For i < n, with v the float32 at x + i*stride bytes, dst[i] = the number
// of borders below v, found in two steps of a search in table (see
// fillTable): the pivots of node 0 give the node 1+c0 to look in, whose
// borders give c1; with s borders per node the count is s*c0 + c1. kind is
// 2*shape, plus 1 when NaN counts as +Inf; shape 0, 1, 2 is QUANT8x8,
// QUANT8x16, QUANT16x16.
//
// NaN goes by the comparison's predicate rather than by replacing the
// value, which would lengthen the chain of dependent instructions that
// bounds this loop. GT_OQ gives NaN the count 0, as -Inf (the loops ending
// in f). For NaN as +Inf (the loops ending in t), NLE_UQ gives NaN a c0 and
// c1 as large as they go, hence the extra node at the end of the table,
// and the count is then clamped to max, the count for +Inf.
//
// Two values go per iteration, for fewer loop instructions per value.
TEXT ·quantizeColumn(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ n+16(FP), CX
	MOVQ table+24(FP), DI
	MOVQ kind+32(FP), AX
	MOVQ max+40(FP), R9
	MOVQ dst+48(FP), DX
	TESTQ CX, CX
	JLE qdone
	VMOVUPS (DI), Y14
	VMOVUPS 32(DI), Y15
	LEAQ (BX)(BX*1), R12
	MOVQ CX, R13
	SHRQ $1, R13 // pairs
	CMPQ AX, $1
	JEQ q8x8t
	JLT q8x8f
	ADDQ $64, DI // node 1, after 16 floats of node 0
	CMPQ AX, $3
	JEQ q8x16t
	JLT q8x16f
	CMPQ AX, $5
	JEQ q16x16t
	JMP q16x16f

q8x8f:
	ADDQ $32, DI // node 1, after the 8 floats of node 0
	TESTQ R13, R13
	JZ q8x8f1

q8x8f2:
	QUANT8x8(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT8x8(GT_OQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q8x8f2

q8x8f1:
	TESTQ $1, CX
	JZ qdone
	QUANT8x8(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	MOVB AX, (DX)
	JMP qdone

q8x8t:
	ADDQ $32, DI // node 1, after the 8 floats of node 0
	TESTQ R13, R13
	JZ q8x8t1

q8x8t2:
	QUANT8x8(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT8x8(NLE_UQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	CMPQ AX, R9
	CMOVQGT R9, AX
	CMPQ R10, R9
	CMOVQGT R9, R10
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q8x8t2

q8x8t1:
	TESTQ $1, CX
	JZ qdone
	QUANT8x8(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	CMPQ AX, R9
	CMOVQGT R9, AX
	MOVB AX, (DX)
	JMP qdone

q8x16f:
	TESTQ R13, R13
	JZ q8x16f1

q8x16f2:
	QUANT8x16(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT8x16(GT_OQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q8x16f2

q8x16f1:
	TESTQ $1, CX
	JZ qdone
	QUANT8x16(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	MOVB AX, (DX)
	JMP qdone

q8x16t:
	TESTQ R13, R13
	JZ q8x16t1

q8x16t2:
	QUANT8x16(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT8x16(NLE_UQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	CMPQ AX, R9
	CMOVQGT R9, AX
	CMPQ R10, R9
	CMOVQGT R9, R10
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q8x16t2

q8x16t1:
	TESTQ $1, CX
	JZ qdone
	QUANT8x16(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	CMPQ AX, R9
	CMOVQGT R9, AX
	MOVB AX, (DX)
	JMP qdone

q16x16f:
	TESTQ R13, R13
	JZ q16x16f1

q16x16f2:
	QUANT16x16(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT16x16(GT_OQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q16x16f2

q16x16f1:
	TESTQ $1, CX
	JZ qdone
	QUANT16x16(GT_OQ, (SI), Y0, Y2, Y3, AX, R8)
	MOVB AX, (DX)
	JMP qdone

q16x16t:
	TESTQ R13, R13
	JZ q16x16t1

q16x16t2:
	QUANT16x16(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	QUANT16x16(NLE_UQ, (SI)(BX*1), Y4, Y5, Y6, R10, R11)
	CMPQ AX, R9
	CMOVQGT R9, AX
	CMPQ R10, R9
	CMOVQGT R9, R10
	MOVB AX, (DX)
	MOVB R10, 1(DX)
	ADDQ $2, DX
	ADDQ R12, SI
	DECQ R13
	JNZ q16x16t2

q16x16t1:
	TESTQ $1, CX
	JZ qdone
	QUANT16x16(NLE_UQ, (SI), Y0, Y2, Y3, AX, R8)
	CMPQ AX, R9
	CMOVQGT R9, AX
	MOVB AX, (DX)
	JMP qdone

qdone:
	VZEROUPPER
	RET

// func evalTreesAVX2(bins *byte, trees *vecTree, ntrees int, splits *vecSplit, leaves *float64, idx *byte, sums *float64, groups int)
//
// Adds the leaf values of ntrees trees (of depth at most 8, one dimension)
// to sums, for 16*groups rows (groups in 1..8) of a block whose bins are
// given, one byte per row, blockSize bytes per slot.
//
// Trees go by chunks of up to chunkTrees. For a chunk, the first pass
// writes each tree's leaf index for all rows into idx (chunkTrees x
// blockSize bytes); the second takes 16 rows at a time, holds their sums in
// X0-X15 and adds the leaf of every tree of the chunk, in tree order, so
// that each row's sum is rounded exactly as a plain loop over trees would.
// A chunk's leaves (8 KB for depth 6) stay in L1 while the 16-row groups
// go over them.
//
// Leaf index: a split is "bin > threshold". VPCMPGTB gives t > bin, with t
// = threshold+1 (at most 127, so the signed compare is right for 7-bit
// bins): -1 where the split is false. Taking the splits from the last to
// the first, n = 2n - that mask collects the negated split bits with split
// 0 at bit 0; XOR with 2^depth - 1 turns it into the leaf index. The rows
// of a byte lane are independent, so 32 rows go per instruction.
//
// The second pass already loads one leaf value per row and tree; loading
// each leaf index too made loads its bound. So the indexes are loaded
// eight at a time into AX and BX and taken out with MOVBLZX from their low
// and high bytes (AL, AH), shifting by 16 every two rows. An instruction
// that reads AH cannot take a REX prefix, hence SI and DI as destinations.
//
// Registers: CX trees left, DX the chunk's first tree, R13 trees in the
// chunk, R9 leaves.
TEXT ·evalTreesAVX2(SB), NOSPLIT, $0-64
	MOVQ trees+8(FP), DX
	MOVQ ntrees+16(FP), CX
	MOVQ leaves+32(FP), R9

chunk:
	TESTQ CX, CX
	JLE edone
	MOVQ $16, R13 // chunkTrees
	CMPQ CX, R13
	CMOVQLT CX, R13

	// First pass: leaf indexes. R8 walks the trees, R10 idx.
	MOVQ bins+0(FP), SI
	MOVQ splits+24(FP), AX
	MOVQ idx+40(FP), R10
	MOVQ DX, R8
	MOVQ R13, R15
	CMPQ groups+56(FP), $2
	JLE narrow

tree4:
	MOVLQSX 8(R8), DI
	LEAQ (AX)(DI*8), DI // the tree's splits, last first
	MOVBLZX 12(R8), R14 // depth
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	TESTL R14, R14
	JZ store4

split4:
	MOVLQSX (DI), R12 // the slot's offset in bins
	VPBROADCASTB 4(DI), Y4
	VPCMPGTB (SI)(R12*1), Y4, Y5
	VPCMPGTB 32(SI)(R12*1), Y4, Y6
	VPCMPGTB 64(SI)(R12*1), Y4, Y7
	VPCMPGTB 96(SI)(R12*1), Y4, Y8
	VPADDB Y0, Y0, Y0
	VPADDB Y1, Y1, Y1
	VPADDB Y2, Y2, Y2
	VPADDB Y3, Y3, Y3
	VPSUBB Y5, Y0, Y0
	VPSUBB Y6, Y1, Y1
	VPSUBB Y7, Y2, Y2
	VPSUBB Y8, Y3, Y3
	ADDQ $8, DI
	DECL R14
	JNZ split4

store4:
	// Fetch the tree's leaves into L1 now, for the second pass: the
	// model's leaves do not stay in L2, and waiting there for the first
	// group's loads stalls the sums.
	MOVQ (R8), BX
	ADDQ R9, BX
	MOVBLZX 14(R8), R11 // 256-byte runs of leaves
prefetch4:
	PREFETCHT0 (BX)
	PREFETCHT0 64(BX)
	PREFETCHT0 128(BX)
	PREFETCHT0 192(BX)
	ADDQ $256, BX
	DECL R11
	JNZ prefetch4
	VPBROADCASTB 13(R8), Y4 // 2^depth - 1
	VPXOR Y4, Y0, Y0
	VPXOR Y4, Y1, Y1
	VPXOR Y4, Y2, Y2
	VPXOR Y4, Y3, Y3
	VMOVDQU Y0, (R10)
	VMOVDQU Y1, 32(R10)
	VMOVDQU Y2, 64(R10)
	VMOVDQU Y3, 96(R10)
	ADDQ $16, R8
	ADDQ $128, R10
	DECQ R15
	JNZ tree4
	JMP sums

	// The same for at most 32 rows (groups <= 2): one register per tree.
narrow:
	MOVLQSX 8(R8), DI
	LEAQ (AX)(DI*8), DI
	MOVBLZX 12(R8), R14
	VPXOR Y0, Y0, Y0
	TESTL R14, R14
	JZ store1

split1:
	MOVLQSX (DI), R12
	VPBROADCASTB 4(DI), Y4
	VPCMPGTB (SI)(R12*1), Y4, Y5
	VPADDB Y0, Y0, Y0
	VPSUBB Y5, Y0, Y0
	ADDQ $8, DI
	DECL R14
	JNZ split1

store1:
	// No prefetch here: so few rows use few of the leaves.
	VPBROADCASTB 13(R8), Y4
	VPXOR Y4, Y0, Y0
	VMOVDQU Y0, (R10)
	ADDQ $16, R8
	ADDQ $128, R10
	DECQ R15
	JNZ narrow

	// Second pass: sums, 16 rows at a time from row R14. R8 walks the
	// trees, R10 their indexes in idx, R12 is the tree's leaves.
sums:
	XORQ R14, R14

group:
	MOVQ sums+48(FP), R11
	LEAQ (R11)(R14*8), R11
	VMOVSD (R11), X0
	VMOVSD 8(R11), X1
	VMOVSD 16(R11), X2
	VMOVSD 24(R11), X3
	VMOVSD 32(R11), X4
	VMOVSD 40(R11), X5
	VMOVSD 48(R11), X6
	VMOVSD 56(R11), X7
	VMOVSD 64(R11), X8
	VMOVSD 72(R11), X9
	VMOVSD 80(R11), X10
	VMOVSD 88(R11), X11
	VMOVSD 96(R11), X12
	VMOVSD 104(R11), X13
	VMOVSD 112(R11), X14
	VMOVSD 120(R11), X15
	MOVQ DX, R8
	MOVQ idx+40(FP), R10
	ADDQ R14, R10
	MOVQ R13, R15

leaf:
	MOVQ (R8), R12
	ADDQ R9, R12
	MOVQ (R10), AX
	MOVQ 8(R10), BX
	MOVBLZX AL, SI
	VADDSD (R12)(SI*8), X0, X0
	MOVBLZX AH, DI
	VADDSD (R12)(DI*8), X1, X1
	SHRQ $16, AX
	MOVBLZX AL, SI
	VADDSD (R12)(SI*8), X2, X2
	MOVBLZX AH, DI
	VADDSD (R12)(DI*8), X3, X3
	SHRQ $16, AX
	MOVBLZX AL, SI
	VADDSD (R12)(SI*8), X4, X4
	MOVBLZX AH, DI
	VADDSD (R12)(DI*8), X5, X5
	SHRQ $16, AX
	MOVBLZX AL, SI
	VADDSD (R12)(SI*8), X6, X6
	MOVBLZX AH, DI
	VADDSD (R12)(DI*8), X7, X7
	MOVBLZX BL, SI
	VADDSD (R12)(SI*8), X8, X8
	MOVBLZX BH, DI
	VADDSD (R12)(DI*8), X9, X9
	SHRQ $16, BX
	MOVBLZX BL, SI
	VADDSD (R12)(SI*8), X10, X10
	MOVBLZX BH, DI
	VADDSD (R12)(DI*8), X11, X11
	SHRQ $16, BX
	MOVBLZX BL, SI
	VADDSD (R12)(SI*8), X12, X12
	MOVBLZX BH, DI
	VADDSD (R12)(DI*8), X13, X13
	SHRQ $16, BX
	MOVBLZX BL, SI
	VADDSD (R12)(SI*8), X14, X14
	MOVBLZX BH, DI
	VADDSD (R12)(DI*8), X15, X15
	ADDQ $16, R8
	ADDQ $128, R10
	DECQ R15
	JNZ leaf

	VMOVSD X0, (R11)
	VMOVSD X1, 8(R11)
	VMOVSD X2, 16(R11)
	VMOVSD X3, 24(R11)
	VMOVSD X4, 32(R11)
	VMOVSD X5, 40(R11)
	VMOVSD X6, 48(R11)
	VMOVSD X7, 56(R11)
	VMOVSD X8, 64(R11)
	VMOVSD X9, 72(R11)
	VMOVSD X10, 80(R11)
	VMOVSD X11, 88(R11)
	VMOVSD X12, 96(R11)
	VMOVSD X13, 104(R11)
	VMOVSD X14, 112(R11)
	VMOVSD X15, 120(R11)
	ADDQ $16, R14
	MOVQ groups+56(FP), R12
	SHLQ $4, R12
	CMPQ R14, R12
	JLT group

	// Next chunk.
	MOVQ R13, R12
	SHLQ $4, R12
	ADDQ R12, DX
	SUBQ R13, CX
	JMP chunk

edone:
	VZEROUPPER
	RET

// func pairIDsAVX2(x *float32, pids *uint16, ids *uint16, n int, border float32, nanBit uint16)
//
// ids[i] = 2*pids[i] + bit, for i < n (a multiple of 16), where bit is
// x[i] > border, or nanBit for a NaN x[i]: the (prefix, bit) pair numbers
// of bitIDs, 16 rows per iteration. GT_OQ (0x1e) is false for NaN, so the
// NaN rows get only nanBit; the two halves' comparison results, 0 or -1
// per float, pack into 16 words in row order after VPERMQ 0xD8 (VPACKSSDW
// interleaves the 128-bit lanes).
TEXT ·pairIDsAVX2(SB), NOSPLIT, $0-38
	MOVQ x+0(FP), SI
	MOVQ pids+8(FP), BX
	MOVQ ids+16(FP), DI
	MOVQ n+24(FP), CX
	VBROADCASTSS border+32(FP), Y15
	MOVWLZX nanBit+36(FP), AX
	VMOVD AX, X14
	VPBROADCASTW X14, Y14
	VPCMPEQW Y13, Y13, Y13
	VPSRLW $15, Y13, Y13
pairloop:
	CMPQ CX, $16
	JLT pairdone
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VCMPPS $0x1e, Y15, Y0, Y2
	VCMPPS $0x1e, Y15, Y1, Y3
	VCMPPS $3, Y0, Y0, Y4
	VCMPPS $3, Y1, Y1, Y5
	VPACKSSDW Y3, Y2, Y2
	VPACKSSDW Y5, Y4, Y4
	VPERMQ $0xd8, Y2, Y2
	VPERMQ $0xd8, Y4, Y4
	VPAND Y13, Y2, Y2
	VPAND Y14, Y4, Y4
	VPOR Y4, Y2, Y2
	VMOVDQU (BX), Y6
	VPADDW Y6, Y6, Y6
	VPADDW Y2, Y6, Y6
	VMOVDQU Y6, (DI)
	ADDQ $64, SI
	ADDQ $32, BX
	ADDQ $32, DI
	SUBQ $16, CX
	JMP pairloop
pairdone:
	VZEROUPPER
	RET
