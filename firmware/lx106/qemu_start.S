/*
 * Start-up for the QEMU lx106 test image: reset stub, stack, bss, main, exit.
 * The stack is below dram0 (see qemu.ld), so the tests' data has all 80 KB.
 * simcall (bytes 00 51 00) is QEMU's semihosting call: a2 = call number
 * (1 = exit, 4 = write), a3.. = arguments, result in a2.
 */
    .section .qemu_reset, "ax"
    .global _qemu_reset
_qemu_reset:
    j       1f
    .align  4
2:  .word   _start
1:  l32r    a0, 2b
    jx      a0

    .section .entry.text, "ax"
    .global _start
    .align  4
    .literal_position
_start:
    movi    a1, _qemu_stack_top
    movi    a2, _bss_start
    movi    a3, _bss_end
    movi    a4, 0
3:  bgeu    a2, a3, 4f
    s32i    a4, a2, 0
    addi    a2, a2, 4
    j       3b
4:  call0   main
    mov     a3, a2
    movi    a2, 1
    .byte   0x00, 0x51, 0x00    /* simcall: exit(a3) */
5:  j       5b

/* Calibration loop: exactly 2 * n + 1 instructions for n >= 1 (a2 = n). */
    .section .text.lx106_spin, "ax"
    .global lx106_spin
    .align  4
lx106_spin:
6:  addi    a2, a2, -1
    bnez    a2, 6b
    ret
