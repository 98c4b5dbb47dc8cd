;; Quote-aware newline / empty-line counting, 64 bytes per step with WebAssembly SIMD.
;; The row rules and the meaning of the counts are those of count.ts (RangeScanner); this kernel only
;; computes them faster. Build: `npx tsx scripts/build-wasm.ts` (writes count-simd.wasm.ts).
;;
;; Memory layout (the JS side, count-simd.ts, owns it):
;;   [0, 16)   results of the last `scan`: four u32 (newlines, newlines at odd parity, empties,
;;             empties at odd parity)
;;   [62, 64)  the two bytes before the data (look-back for the empty-line test; 0 = none)
;;   [64, ...) the data, copied in by JS; the kernel reads whole 64-byte blocks only
;;
;; Per block: three 64-bit masks, one bit per byte: Q (quote), N (LF), R (CR). The quote parity
;; before byte i is the prefix-XOR of Q (inclusive is the same for LF bytes, which are not quotes)
;; XOR-ed with the parity carried in from earlier blocks. A LF at bit i is counted at that parity.
;; An empty line: a LF whose previous byte is LF, or whose previous byte is CR with a LF before it.
(module
  (memory (export "memory") 1)

  ;; scan(p, blocks, parity) -> parity after the blocks. Reads mem[p-2, p + 64*blocks).
  (func (export "scan") (param $p i32) (param $blocks i32) (param $parity i32) (result i32)
    (local $end i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $q i64) (local $n i64) (local $r i64)
    (local $par i64)      ;; all ones when the parity carried in is odd
    (local $cn i64)       ;; bit 0: byte before the block is LF
    (local $c2n i64)      ;; bits 0,1: bytes -2, -1 before the block are LF
    (local $e i64) (local $x i64)
    (local $tn i64) (local $on i64) (local $te i64) (local $oe i64)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $blocks) (i32.const 6))))
    (local.set $par (i64.sub (i64.const 0) (i64.extend_i32_u (i32.and (local.get $parity) (i32.const 1)))))
    (local.set $cn
      (i64.extend_i32_u (i32.eq (i32.load8_u (i32.sub (local.get $p) (i32.const 1))) (i32.const 10))))
    (local.set $c2n
      (i64.or
        (i64.shl (local.get $cn) (i64.const 1))
        (i64.extend_i32_u (i32.eq (i32.load8_u (i32.sub (local.get $p) (i32.const 2))) (i32.const 10)))))
    (block $done
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (loop $next
        (local.set $v0 (v128.load offset=0 (local.get $p)))
        (local.set $v1 (v128.load offset=16 (local.get $p)))
        (local.set $v2 (v128.load offset=32 (local.get $p)))
        (local.set $v3 (v128.load offset=48 (local.get $p)))
        ;; N: LF mask
        (local.set $n
          (i64.or
            (i64.extend_i32_u
              (i32.or
                (i8x16.bitmask (i8x16.eq (local.get $v0) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                (i32.shl
                  (i8x16.bitmask (i8x16.eq (local.get $v1) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                  (i32.const 16))))
            (i64.shl
              (i64.extend_i32_u
                (i32.or
                  (i8x16.bitmask (i8x16.eq (local.get $v2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                  (i32.shl
                    (i8x16.bitmask (i8x16.eq (local.get $v3) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
                    (i32.const 16))))
              (i64.const 32))))
        ;; Q: quote mask
        (local.set $q
          (i64.or
            (i64.extend_i32_u
              (i32.or
                (i8x16.bitmask (i8x16.eq (local.get $v0) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34)))
                (i32.shl
                  (i8x16.bitmask (i8x16.eq (local.get $v1) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34)))
                  (i32.const 16))))
            (i64.shl
              (i64.extend_i32_u
                (i32.or
                  (i8x16.bitmask (i8x16.eq (local.get $v2) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34)))
                  (i32.shl
                    (i8x16.bitmask (i8x16.eq (local.get $v3) (v128.const i8x16 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34 34)))
                    (i32.const 16))))
              (i64.const 32))))
        ;; Parity mask: prefix-XOR of Q (skipped when the block has no quote: it is all zeros then).
        (if (i64.ne (local.get $q) (i64.const 0))
          (then
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 1))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 2))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 4))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 8))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 16))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 32))))
            (local.set $par (i64.xor (local.get $par) (local.get $q)))))
        ;; $par is now the parity before each byte of this block (all bits equal if no quote).
        (if (i64.ne (local.get $n) (i64.const 0))
          (then
            (local.set $tn (i64.add (local.get $tn) (i64.popcnt (local.get $n))))
            (local.set $on (i64.add (local.get $on) (i64.popcnt (i64.and (local.get $n) (local.get $par)))))
            ;; LF right after LF
            (local.set $e
              (i64.and (local.get $n) (i64.or (i64.shl (local.get $n) (i64.const 1)) (local.get $cn))))
            ;; LF two bytes after a LF: an empty CRLF line if the byte between is CR. Rare in real
            ;; data (rows are longer than two bytes), so the CR mask is built only then.
            (local.set $x
              (i64.and (local.get $n) (i64.or (i64.shl (local.get $n) (i64.const 2)) (local.get $c2n))))
            (if (i64.ne (local.get $x) (i64.const 0))
              (then
                (local.set $r
                  (i64.or
                    (i64.extend_i32_u
                      (i32.or
                        (i8x16.bitmask (i8x16.eq (local.get $v0) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
                        (i32.shl
                          (i8x16.bitmask (i8x16.eq (local.get $v1) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
                          (i32.const 16))))
                    (i64.shl
                      (i64.extend_i32_u
                        (i32.or
                          (i8x16.bitmask (i8x16.eq (local.get $v2) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
                          (i32.shl
                            (i8x16.bitmask (i8x16.eq (local.get $v3) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)))
                            (i32.const 16))))
                      (i64.const 32))))
                ;; previous byte CR: R shifted in by one, bit 0 from the byte before the block
                (local.set $e
                  (i64.or (local.get $e)
                    (i64.and (local.get $x)
                      (i64.or
                        (i64.shl (local.get $r) (i64.const 1))
                        (i64.extend_i32_u
                          (i32.eq (i32.load8_u (i32.sub (local.get $p) (i32.const 1))) (i32.const 13)))))))))
            (if (i64.ne (local.get $e) (i64.const 0))
              (then
                (local.set $te (i64.add (local.get $te) (i64.popcnt (local.get $e))))
                (local.set $oe
                  (i64.add (local.get $oe) (i64.popcnt (i64.and (local.get $e) (local.get $par)))))))))
        ;; carries into the next block
        (local.set $cn (i64.shr_u (local.get $n) (i64.const 63)))
        (local.set $c2n (i64.shr_u (local.get $n) (i64.const 62)))
        (local.set $par (i64.shr_s (local.get $par) (i64.const 63)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br_if $next (i32.lt_u (local.get $p) (local.get $end)))))
    (i32.store offset=0 (i32.const 0) (i32.wrap_i64 (local.get $tn)))
    (i32.store offset=4 (i32.const 0) (i32.wrap_i64 (local.get $on)))
    (i32.store offset=8 (i32.const 0) (i32.wrap_i64 (local.get $te)))
    (i32.store offset=12 (i32.const 0) (i32.wrap_i64 (local.get $oe)))
    (i32.wrap_i64 (i64.and (local.get $par) (i64.const 1)))))
