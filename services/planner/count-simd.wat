;; Quote-aware newline / empty-line counting, 64 bytes per step with WebAssembly SIMD.
;; The row rules and the meaning of the counts are those of count.ts (RangeScanner); this kernel only
;; computes them faster. Build: `npx tsx scripts/build-wasm.ts` (writes count-simd.wasm.ts).
;;
;; Memory layout (the JS side, count-simd.ts, owns it):
;;   [0, 28)   results of the last `scan`: seven u32 (newlines, newlines at odd parity, empties,
;;             empties at odd parity, CRs, CRLFs, stray-quote flags: bit 0 = a quote that would open
;;             a quoted field in the middle of a field if the range starts outside quotes, bit 1 = the
;;             same if it starts inside)
;;   [62, 64)  the two bytes before the data (look-back for the empty-line test; 0 = none)
;;   [64, ...) the data, copied in by JS; the kernel reads whole 64-byte blocks only
;;
;; Per block: three 64-bit masks, one bit per byte: Q (quote), N (LF), R (CR). The quote parity
;; before byte i is the prefix-XOR of Q (inclusive is the same for LF bytes, which are not quotes)
;; XOR-ed with the parity carried in from earlier blocks. A LF at bit i is counted at that parity.
;; An empty line: a LF whose previous byte is LF, or whose previous byte is CR with a LF before it.
;; CRs and CRLFs are counted so the caller knows whether a bare CR (a line end of its own) occurs, and
;; quotes that open a quoted field (by parity) after a byte other than delimiter, LF, CR or quote are
;; flagged: with neither, the parity count is the grammar's count; otherwise the caller counts exactly.
(module
  (memory (export "memory") 1)

  ;; 1 when a quote after byte $c may open a quoted field: $c is the delimiter, LF, CR or a quote.
  (func $good (param $c i32) (param $delim i32) (result i32)
    (i32.or
      (i32.or (i32.eq (local.get $c) (local.get $delim)) (i32.eq (local.get $c) (i32.const 10)))
      (i32.or (i32.eq (local.get $c) (i32.const 13)) (i32.eq (local.get $c) (i32.const 34)))))

  ;; scan(p, blocks, parity, delim) -> parity after the blocks. Reads mem[p-2, p + 64*blocks).
  (func (export "scan") (param $p i32) (param $blocks i32) (param $parity i32) (param $delim i32) (result i32)
    (local $end i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $q i64) (local $n i64) (local $r i64)
    (local $par i64)      ;; all ones when the parity carried in is odd
    (local $cn i64)       ;; bit 0: byte before the block is LF
    (local $c2n i64)      ;; bits 0,1: bytes -2, -1 before the block are LF
    (local $e i64) (local $x i64)
    (local $tn i64) (local $on i64) (local $te i64) (local $oe i64)
    (local $qr i64)       ;; raw quote mask (before the prefix-XOR)
    (local $g i64)        ;; bytes after which a quote may open a field: delimiter, LF, CR, quote
    (local $b i64)        ;; quotes after any other byte
    (local $ccr i64)      ;; bit 0: byte before the block is CR
    (local $tcr i64) (local $tcrlf i64) (local $s0 i64) (local $s1 i64)
    (local $vd v128)
    (local.set $vd (i8x16.splat (local.get $delim)))
    (local.set $ccr
      (i64.extend_i32_u (i32.eq (i32.load8_u (i32.sub (local.get $p) (i32.const 1))) (i32.const 13))))
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
        ;; R: CR mask; CRs and CRLFs (a LF whose previous byte is CR) counted when there are any
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
        (if (i64.ne (i64.or (local.get $r) (local.get $ccr)) (i64.const 0))
          (then
            (local.set $tcr (i64.add (local.get $tcr) (i64.popcnt (local.get $r))))
            (local.set $tcrlf
              (i64.add (local.get $tcrlf)
                (i64.popcnt
                  (i64.and (local.get $n) (i64.or (i64.shl (local.get $r) (i64.const 1)) (local.get $ccr))))))))
        (local.set $qr (local.get $q))
        ;; Parity mask: prefix-XOR of Q (skipped when the block has no quote: it is all zeros then).
        (if (i64.ne (local.get $q) (i64.const 0))
          (then
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 1))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 2))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 4))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 8))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 16))))
            (local.set $q (i64.xor (local.get $q) (i64.shl (local.get $q) (i64.const 32))))
            (local.set $par (i64.xor (local.get $par) (local.get $q)))
            ;; quotes after a byte that cannot precede an opening quote
            (local.set $g
                (i64.or
                  (i64.extend_i32_u
                    (i32.or
                      (i8x16.bitmask (i8x16.eq (local.get $v0) (local.get $vd)))
                      (i32.shl (i8x16.bitmask (i8x16.eq (local.get $v1) (local.get $vd))) (i32.const 16))))
                  (i64.shl
                    (i64.extend_i32_u
                      (i32.or
                        (i8x16.bitmask (i8x16.eq (local.get $v2) (local.get $vd)))
                        (i32.shl (i8x16.bitmask (i8x16.eq (local.get $v3) (local.get $vd))) (i32.const 16))))
                    (i64.const 32))))
            (local.set $g (i64.or (local.get $g) (i64.or (local.get $n) (i64.or (local.get $r) (local.get $qr)))))
            (local.set $b
              (i64.and (local.get $qr)
                (i64.xor
                  (i64.or
                    (i64.shl (local.get $g) (i64.const 1))
                    (i64.extend_i32_u
                      (call $good (i32.load8_u (i32.sub (local.get $p) (i32.const 1))) (local.get $delim))))
                  (i64.const -1))))
            ;; at a quote, $par holds the parity after it: 1 = it opened (for a range starting outside)
            (local.set $s0 (i64.or (local.get $s0) (i64.and (local.get $b) (local.get $par))))
            (local.set $s1
              (i64.or (local.get $s1) (i64.and (local.get $b) (i64.xor (local.get $par) (i64.const -1)))))))
        ;; $par is now the parity before each byte of this block (all bits equal if no quote).
        (if (i64.ne (local.get $n) (i64.const 0))
          (then
            (local.set $tn (i64.add (local.get $tn) (i64.popcnt (local.get $n))))
            (local.set $on (i64.add (local.get $on) (i64.popcnt (i64.and (local.get $n) (local.get $par)))))
            ;; LF right after LF
            (local.set $e
              (i64.and (local.get $n) (i64.or (i64.shl (local.get $n) (i64.const 1)) (local.get $cn))))
            ;; LF two bytes after a LF: an empty CRLF line if the byte between is CR.
            (local.set $x
              (i64.and (local.get $n) (i64.or (i64.shl (local.get $n) (i64.const 2)) (local.get $c2n))))
            (if (i64.ne (local.get $x) (i64.const 0))
              (then
                ;; previous byte CR: R shifted in by one, bit 0 from the byte before the block
                (local.set $e
                  (i64.or (local.get $e)
                    (i64.and (local.get $x)
                      (i64.or
                        (i64.shl (local.get $r) (i64.const 1))
                        (local.get $ccr)))))))
            (if (i64.ne (local.get $e) (i64.const 0))
              (then
                (local.set $te (i64.add (local.get $te) (i64.popcnt (local.get $e))))
                (local.set $oe
                  (i64.add (local.get $oe) (i64.popcnt (i64.and (local.get $e) (local.get $par)))))))))
        ;; carries into the next block
        (local.set $cn (i64.shr_u (local.get $n) (i64.const 63)))
        (local.set $ccr (i64.shr_u (local.get $r) (i64.const 63)))
        (local.set $c2n (i64.shr_u (local.get $n) (i64.const 62)))
        (local.set $par (i64.shr_s (local.get $par) (i64.const 63)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br_if $next (i32.lt_u (local.get $p) (local.get $end)))))
    (i32.store offset=0 (i32.const 0) (i32.wrap_i64 (local.get $tn)))
    (i32.store offset=4 (i32.const 0) (i32.wrap_i64 (local.get $on)))
    (i32.store offset=8 (i32.const 0) (i32.wrap_i64 (local.get $te)))
    (i32.store offset=12 (i32.const 0) (i32.wrap_i64 (local.get $oe)))
    (i32.store offset=16 (i32.const 0) (i32.wrap_i64 (local.get $tcr)))
    (i32.store offset=20 (i32.const 0) (i32.wrap_i64 (local.get $tcrlf)))
    (i32.store offset=24 (i32.const 0)
      (i32.or
        (i64.ne (local.get $s0) (i64.const 0))
        (i32.shl (i64.ne (local.get $s1) (i64.const 0)) (i32.const 1))))
    (i32.wrap_i64 (i64.and (local.get $par) (i64.const 1)))))
