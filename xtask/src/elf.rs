//! Just enough of ELF32 (little-endian, Arm or RISC-V) to read section sizes, symbols and code
//! bytes, plus Thumb and RISC-V branch decoders for the panic-site count. No binutils needed: Debian's `size`
//! and `nm` would do for the sizes (they read ARM ELFs), but its `objdump` does not know ARM,
//! and `llvm-objdump` needs the `llvm-tools` rustup component.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A section header.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub kind: u32,
    pub flags: u32,
    pub addr: u32,
    pub offset: u32,
    pub size: u32,
}

/// A symbol of `.symtab`.
#[derive(Debug, Clone)]
pub struct Symbol {
    pub name: String,
    pub value: u32,
    pub size: u32,
    pub kind: u8,
    pub shndx: u16,
}

/// A parsed ELF32 file.
#[derive(Debug)]
pub struct Elf<'a> {
    pub bytes: &'a [u8],
    /// `e_machine`: 40 Arm, 243 RISC-V.
    pub machine: u16,
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
}

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHF_WRITE: u32 = 1;
const SHF_ALLOC: u32 = 2;
const STT_FUNC: u8 = 2;
const EM_RISCV: u16 = 243;

fn u16_at(b: &[u8], o: usize) -> Result<u16, String> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("ELF truncated at {o}"))
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, String> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("ELF truncated at {o}"))
}

fn cstr(b: &[u8], o: usize) -> String {
    let s = b.get(o..).unwrap_or(&[]);
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

impl<'a> Elf<'a> {
    /// Parses the section headers and the symbol table.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.get(0..4) != Some(b"\x7fELF")
            || bytes.get(4) != Some(&1)
            || bytes.get(5) != Some(&1)
        {
            return Err("not a little-endian ELF32 file".into());
        }
        let shoff = u32_at(bytes, 0x20)? as usize;
        let shentsize = u16_at(bytes, 0x2e)? as usize;
        let shnum = u16_at(bytes, 0x30)? as usize;
        let shstrndx = u16_at(bytes, 0x32)? as usize;
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let o = shoff + i * shentsize;
            raw.push((
                u32_at(bytes, o)?,
                Section {
                    name: String::new(),
                    kind: u32_at(bytes, o + 4)?,
                    flags: u32_at(bytes, o + 8)?,
                    addr: u32_at(bytes, o + 12)?,
                    offset: u32_at(bytes, o + 16)?,
                    size: u32_at(bytes, o + 20)?,
                },
                u32_at(bytes, o + 24)?, // sh_link
            ));
        }
        let shstr_off = raw
            .get(shstrndx)
            .map(|r| r.1.offset as usize)
            .ok_or("bad e_shstrndx")?;
        for (name, s, _) in &mut raw {
            s.name = cstr(bytes, shstr_off + *name as usize);
        }
        let mut symbols = Vec::new();
        if let Some((_, symtab, link)) = raw.iter().find(|r| r.1.kind == SHT_SYMTAB) {
            let strtab = raw
                .get(*link as usize)
                .map(|r| r.1.offset as usize)
                .ok_or("bad symtab link")?;
            for k in 0..symtab.size as usize / 16 {
                let o = symtab.offset as usize + k * 16;
                symbols.push(Symbol {
                    name: cstr(bytes, strtab + u32_at(bytes, o)? as usize),
                    value: u32_at(bytes, o + 4)?,
                    size: u32_at(bytes, o + 8)?,
                    kind: bytes[o + 12] & 0xf,
                    shndx: u16_at(bytes, o + 14)?,
                });
            }
        }
        Ok(Self {
            bytes,
            machine: u16_at(bytes, 18)?,
            sections: raw.into_iter().map(|r| r.1).collect(),
            symbols,
        })
    }

    /// Berkeley sizes, as `size` prints them: `text` = allocated read-only sections with
    /// contents (vector table, code, rodata), `data` = allocated writable sections with
    /// contents, `bss` = allocated sections without contents. Flash = text + data,
    /// static RAM = data + bss. riscv-rt's `.stack` and `.heap` sections (the room reserved
    /// for them, not static data) are left out; the stack is measured separately.
    pub fn berkeley(&self) -> (u64, u64, u64) {
        let (mut text, mut data, mut bss) = (0, 0, 0);
        for s in self
            .sections
            .iter()
            .filter(|s| s.flags & SHF_ALLOC != 0 && s.name != ".stack" && s.name != ".heap")
        {
            let size = u64::from(s.size);
            match (s.kind, s.flags & SHF_WRITE != 0) {
                (SHT_NOBITS, _) => bss += size,
                (_, true) => data += size,
                _ => text += size,
            }
        }
        let _ = SHT_PROGBITS;
        (text, data, bss)
    }

    /// The first symbol called `name`.
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.name == name)
    }

    /// Bytes at virtual address `addr` (from the section that holds it).
    fn bytes_at(&self, addr: u32, len: u32) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| {
            s.kind != SHT_NOBITS
                && s.flags & SHF_ALLOC != 0
                && addr >= s.addr
                && addr + len <= s.addr + s.size
        })?;
        let o = (s.offset + (addr - s.addr)) as usize;
        self.bytes.get(o..o + len as usize)
    }
}

/// Demangled name without the hash suffix.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// A function of the call graph.
#[derive(Debug, Clone)]
struct Func {
    name: String,
    start: u32,
    size: u32,
}

/// Direct branch targets (`bl`, `b.w`, `b<cond>.w`, 16-bit `b`/`b<cond>`) leaving each
/// function, decoded from the Thumb code between ARM mapping symbols (`$t` code, `$d` data).
fn branch_targets(elf: &Elf<'_>, f: &Func, data_ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Some(code) = elf.bytes_at(f.start, f.size) else {
        return out;
    };
    let mut i = 0usize;
    while i + 2 <= code.len() {
        let pc = f.start + i as u32;
        if let Some(&(_, end)) = data_ranges.iter().find(|(s, e)| pc >= *s && pc < *e) {
            i = (end - f.start) as usize;
            continue;
        }
        let hw1 = u16::from_le_bytes([code[i], code[i + 1]]) as u32;
        let wide = matches!(hw1 >> 11, 0b11101..=0b11111);
        if wide {
            if i + 4 > code.len() {
                break;
            }
            let hw2 = u16::from_le_bytes([code[i + 2], code[i + 3]]) as u32;
            if hw1 >> 11 == 0b11110 && hw2 & 0x8000 != 0 {
                let s = (hw1 >> 10) & 1;
                let j1 = (hw2 >> 13) & 1;
                let j2 = (hw2 >> 11) & 1;
                let op = (hw2 >> 12) & 0b101;
                let target = match op {
                    // BL (T1) and B.W (T4): 25-bit offset.
                    0b101 | 0b001 => {
                        let i1 = !(j1 ^ s) & 1;
                        let i2 = !(j2 ^ s) & 1;
                        let imm = (s << 24)
                            | (i1 << 23)
                            | (i2 << 22)
                            | ((hw1 & 0x3ff) << 12)
                            | ((hw2 & 0x7ff) << 1);
                        Some(pc.wrapping_add(4).wrapping_add(sign_extend(imm, 25)))
                    }
                    // B<cond>.W (T3): 21-bit offset (cond 0b111x are other instructions).
                    0b000 if (hw1 >> 6) & 0xf < 0b1110 => {
                        let imm = (s << 20)
                            | (j2 << 19)
                            | (j1 << 18)
                            | ((hw1 & 0x3f) << 12)
                            | ((hw2 & 0x7ff) << 1);
                        Some(pc.wrapping_add(4).wrapping_add(sign_extend(imm, 21)))
                    }
                    _ => None,
                };
                if let Some(t) = target {
                    out.push((pc, t));
                }
            }
            i += 4;
        } else {
            // B (T2) and B<cond> (T1) can tail-call a neighbour; keep those that leave the function.
            let target = if hw1 >> 11 == 0b11100 {
                Some(
                    pc.wrapping_add(4)
                        .wrapping_add(sign_extend((hw1 & 0x7ff) << 1, 12)),
                )
            } else if hw1 >> 12 == 0b1101 && (hw1 >> 8) & 0xf < 0b1110 {
                Some(
                    pc.wrapping_add(4)
                        .wrapping_add(sign_extend((hw1 & 0xff) << 1, 9)),
                )
            } else {
                None
            };
            if let Some(t) = target
                && (t < f.start || t >= f.start + f.size)
            {
                out.push((pc, t));
            }
            i += 2;
        }
    }
    out
}

fn sign_extend(v: u32, bits: u32) -> u32 {
    let shift = 32 - bits;
    (((v << shift) as i32) >> shift) as u32
}

/// Panic call sites reachable from the functions whose demangled name contains `root`.
#[derive(Debug, Default)]
pub struct PanicReport {
    /// Demangled root functions found.
    pub roots: Vec<String>,
    /// Functions reachable from the roots through direct calls/branches (roots included, panic
    /// entry points excluded).
    pub reachable: usize,
    /// Branch instructions in reachable functions whose target is a panic entry point (see
    /// [`is_panic_entry`]): (caller, callee, count).
    pub sites: Vec<(String, String, usize)>,
    /// Indirect calls and jumps (`blx rN`, `bx rN` other than `bx lr`) in reachable functions:
    /// the call graph cannot follow them, so the count is complete only when this is 0.
    pub indirect: usize,
}

impl PanicReport {
    pub fn total(&self) -> usize {
        self.sites.iter().map(|s| s.2).sum()
    }
}

/// A function that only panics: everything in `core::panicking` (`panic`, `panic_fmt`,
/// `panic_bounds_check`, `assert_failed`, ...) and core's out-of-line panic helpers
/// (`core::slice::index::slice_end_index_len_fail`, `core::option::unwrap_failed`,
/// `core::result::unwrap_failed`, `copy_from_slice::len_mismatch_fail`,
/// `core::cell::panic_already_borrowed`, ...), and the panic handler itself. A bounds check
/// calls one of these, so each call of one is one panic site.
pub fn is_panic_entry(name: &str) -> bool {
    name.starts_with("core::panicking::")
        || name.ends_with("rust_begin_unwind")
        || (name.starts_with("core::")
            && (name.contains("panic") || name.ends_with("_fail") || name.ends_with("_failed")))
}

/// Builds the direct call graph from the symbol table and counts branches into panic entry
/// points (see [`is_panic_entry`]) from everything reachable from `root`.
///
/// # Errors
/// When no function name contains `root` (a renamed or inlined root would otherwise report 0).
pub fn panic_sites(elf: &Elf<'_>, root: &str) -> Result<PanicReport, String> {
    let exec: Vec<&Section> = elf.sections.iter().filter(|s| s.flags & 0x4 != 0).collect();
    let in_exec = |a: u32| exec.iter().any(|s| a >= s.addr && a < s.addr + s.size);
    let mut funcs: BTreeMap<u32, Func> = BTreeMap::new();
    for s in &elf.symbols {
        if s.kind == STT_FUNC && s.size > 0 && in_exec(s.value & !1) {
            funcs.entry(s.value & !1).or_insert(Func {
                name: demangle(&s.name),
                start: s.value & !1,
                size: s.size,
            });
        }
    }
    // Mapping symbols: `$d` starts data (literal pools), `$t`/`$a` starts code again.
    let mut maps: Vec<(u32, bool)> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.shndx != 0
                && (s.name == "$d"
                    || s.name.starts_with("$d.")
                    || s.name == "$t"
                    || s.name.starts_with("$t."))
        })
        .map(|s| (s.value, s.name.starts_with("$d")))
        .collect();
    maps.sort();
    let mut data_ranges = Vec::new();
    for (k, &(a, is_data)) in maps.iter().enumerate() {
        if is_data {
            let end = maps[k + 1..]
                .iter()
                .find(|m| !m.1)
                .map(|m| m.0)
                .unwrap_or(u32::MAX);
            let func_end = funcs
                .range(..=a)
                .next_back()
                .map(|(_, f)| f.start + f.size)
                .unwrap_or(end);
            data_ranges.push((a, end.min(func_end.max(a))));
        }
    }
    let mut report = PanicReport::default();
    let mut queue: VecDeque<u32> = funcs
        .values()
        .filter(|f| f.name.contains(root))
        .map(|f| f.start)
        .collect();
    if queue.is_empty() {
        return Err(format!(
            "no function named like {root:?} in the ELF: the panic-site count needs it as its root"
        ));
    }
    report.roots = queue.iter().map(|a| funcs[a].name.clone()).collect();
    let mut seen: BTreeSet<u32> = queue.iter().copied().collect();
    let mut sites: BTreeMap<(String, String), usize> = BTreeMap::new();
    while let Some(a) = queue.pop_front() {
        let f = funcs[&a].clone();
        let (targets, indirect) = if elf.machine == EM_RISCV {
            riscv_branches(elf, &f)
        } else {
            (
                branch_targets(elf, &f, &data_ranges),
                indirect_branches(elf, &f, &data_ranges),
            )
        };
        report.indirect += indirect;
        for (_pc, t) in targets {
            let Some(callee) = funcs.get(&t) else {
                continue;
            };
            if is_panic_entry(&callee.name) {
                *sites
                    .entry((f.name.clone(), callee.name.clone()))
                    .or_default() += 1;
                continue; // the panic machinery itself is not searched for more sites
            }
            if seen.insert(t) {
                queue.push_back(t);
            }
        }
    }
    report.reachable = seen.len();
    report.sites = sites.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    Ok(report)
}

/// RISC-V (RV32IC): the direct branch targets leaving `f` — `jal`, `c.jal`, `c.j`, `auipc` +
/// `jalr` pairs (calls the linker did not relax), and conditional branches (`b*`, `c.beqz`,
/// `c.bnez`) that leave the function — and the number of indirect jumps and calls (`jalr` and
/// `c.jr`/`c.jalr` other than a return through `ra` or an `auipc` pair).
fn riscv_branches(elf: &Elf<'_>, f: &Func) -> (Vec<(u32, u32)>, usize) {
    let (mut out, mut indirect) = (Vec::new(), 0usize);
    let Some(code) = elf.bytes_at(f.start, f.size) else {
        return (out, 0);
    };
    let inside = |t: u32| t >= f.start && t < f.start + f.size;
    // The last `auipc`: (pc, rd, upper immediate).
    let mut auipc: Option<(u32, u32, u32)> = None;
    let mut i = 0usize;
    while i + 2 <= code.len() {
        let pc = f.start + i as u32;
        let lo = u16::from_le_bytes([code[i], code[i + 1]]) as u32;
        if lo & 3 == 3 {
            if i + 4 > code.len() {
                break;
            }
            let w = lo | (u16::from_le_bytes([code[i + 2], code[i + 3]]) as u32) << 16;
            let (opcode, rd, rs1) = (w & 0x7f, (w >> 7) & 31, (w >> 15) & 31);
            let prev = auipc.take();
            match opcode {
                0x17 => auipc = Some((pc, rd, w & 0xffff_f000)),
                0x6f => {
                    let imm = ((w >> 31) << 20)
                        | (((w >> 21) & 0x3ff) << 1)
                        | (((w >> 20) & 1) << 11)
                        | (((w >> 12) & 0xff) << 12);
                    let t = pc.wrapping_add(sign_extend(imm, 21));
                    if rd != 0 || !inside(t) {
                        out.push((pc, t));
                    }
                }
                0x63 => {
                    let imm = ((w >> 31) << 12)
                        | (((w >> 25) & 0x3f) << 5)
                        | (((w >> 8) & 0xf) << 1)
                        | (((w >> 7) & 1) << 11);
                    let t = pc.wrapping_add(sign_extend(imm, 13));
                    if !inside(t) {
                        out.push((pc, t));
                    }
                }
                0x67 => {
                    let imm = sign_extend(w >> 20, 12);
                    match prev {
                        Some((apc, ard, upper)) if ard == rs1 => {
                            out.push((pc, apc.wrapping_add(upper).wrapping_add(imm)));
                        }
                        _ if rd == 0 && rs1 == 1 && imm == 0 => {} // ret
                        _ => indirect += 1,
                    }
                }
                _ => {}
            }
            i += 4;
        } else {
            auipc = None;
            let (op, funct3) = (lo & 3, lo >> 13);
            if op == 1 && (funct3 == 1 || funct3 == 5) {
                // c.jal (RV32) / c.j: offset[11|4|9:8|10|6|7|3:1|5].
                let imm = (((lo >> 12) & 1) << 11)
                    | (((lo >> 11) & 1) << 4)
                    | (((lo >> 9) & 3) << 8)
                    | (((lo >> 8) & 1) << 10)
                    | (((lo >> 7) & 1) << 6)
                    | (((lo >> 6) & 1) << 7)
                    | (((lo >> 3) & 7) << 1)
                    | (((lo >> 2) & 1) << 5);
                let t = pc.wrapping_add(sign_extend(imm, 12));
                if funct3 == 1 || !inside(t) {
                    out.push((pc, t));
                }
            } else if op == 1 && (funct3 == 6 || funct3 == 7) {
                // c.beqz / c.bnez: offset[8|4:3] = [12|11:10], offset[7:6|2:1|5] = [6:5|4:3|2].
                let imm = (((lo >> 12) & 1) << 8)
                    | (((lo >> 10) & 3) << 3)
                    | (((lo >> 5) & 3) << 6)
                    | (((lo >> 3) & 3) << 1)
                    | (((lo >> 2) & 1) << 5);
                let t = pc.wrapping_add(sign_extend(imm, 9));
                if !inside(t) {
                    out.push((pc, t));
                }
            } else if op == 2 && funct3 == 4 && (lo >> 2) & 31 == 0 && (lo >> 7) & 31 != 0 {
                // c.jr rs1 (bit 12 clear) / c.jalr rs1 (bit 12 set); `c.jr ra` is a return.
                let (link, rs1) = ((lo >> 12) & 1 == 1, (lo >> 7) & 31);
                if link || rs1 != 1 {
                    indirect += 1;
                }
            }
            i += 2;
        }
    }
    (out, indirect)
}

/// `blx rN` and `bx rN` (other than `bx lr`) in the code of `f`.
fn indirect_branches(elf: &Elf<'_>, f: &Func, data_ranges: &[(u32, u32)]) -> usize {
    let Some(code) = elf.bytes_at(f.start, f.size) else {
        return 0;
    };
    let (mut i, mut n) = (0usize, 0usize);
    while i + 2 <= code.len() {
        let pc = f.start + i as u32;
        if let Some(&(_, end)) = data_ranges.iter().find(|(s, e)| pc >= *s && pc < *e) {
            i = (end - f.start) as usize;
            continue;
        }
        let hw1 = u16::from_le_bytes([code[i], code[i + 1]]);
        if matches!(hw1 >> 11, 0b11101..=0b11111) {
            i += 4;
            continue;
        }
        // BX (0x4700 | Rm << 3) and BLX (0x4780 | Rm << 3), Rm = bits 6..3.
        if hw1 & 0xff07 == 0x4700 {
            let rm = (hw1 >> 3) & 0xf;
            let link = hw1 & 0x80 != 0;
            if link || rm != 14 {
                n += 1;
            }
        }
        i += 2;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_entries() {
        for n in [
            "core::panicking::panic_bounds_check",
            "core::panicking::panic_fmt",
            "core::slice::index::slice_end_index_len_fail",
            "core::option::unwrap_failed",
            "core::result::unwrap_failed",
            "core::slice::<impl [T]>::copy_from_slice::len_mismatch_fail",
            "core::cell::panic_already_borrowed",
            "__rustc::rust_begin_unwind",
        ] {
            assert!(is_panic_entry(n), "{n}");
        }
        for n in [
            "microfit_core::train::check_batch",
            "compiler_builtins::mem::memcpy",
            "core::fmt::write",
        ] {
            assert!(!is_panic_entry(n), "{n}");
        }
    }

    /// Hand-assembled RV32IC: `jal ra, +8` / `c.j -2` / `auipc t1, 0; jalr ra, 16(t1)` /
    /// `jalr a5` / `ret` (`jalr x0, 0(ra)`) / `c.jr ra` / `c.jalr a0` / `c.jal +8` (encodings
    /// checked with `llvm-mc -triple=riscv32 -mattr=+c -show-encoding`).
    #[test]
    fn riscv_decoder() {
        let code: Vec<u8> = [
            0x0080_00ef_u32.to_le_bytes().to_vec(), // 0x00: jal ra, 0x08
            0xbffd_u16.to_le_bytes().to_vec(),      // 0x04: c.j 0x02
            0x0000_0317_u32.to_le_bytes().to_vec(), // 0x06: auipc t1, 0
            0x0103_00e7_u32.to_le_bytes().to_vec(), // 0x0a: jalr ra, 16(t1) -> 0x16
            0x0007_80e7_u32.to_le_bytes().to_vec(), // 0x0e: jalr ra, 0(a5)
            0x0000_8067_u32.to_le_bytes().to_vec(), // 0x12: ret
            0x8082_u16.to_le_bytes().to_vec(),      // 0x16: c.jr ra
            0x9502_u16.to_le_bytes().to_vec(),      // 0x18: c.jalr a0
            0x2021_u16.to_le_bytes().to_vec(),      // 0x1a: c.jal 0x22
        ]
        .concat();
        let elf = Elf {
            bytes: &code,
            machine: EM_RISCV,
            sections: vec![Section {
                name: ".text".into(),
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC | 0x4,
                addr: 0x100,
                offset: 0,
                size: code.len() as u32,
            }],
            symbols: Vec::new(),
        };
        // As one function at 0x100: the jal (a call) and the auipc pair; c.j stays inside.
        let f = Func {
            name: "f".into(),
            start: 0x100,
            size: code.len() as u32,
        };
        let (targets, indirect) = riscv_branches(&elf, &f);
        assert_eq!(targets, [(0x100, 0x108), (0x10a, 0x116), (0x11a, 0x122)]);
        assert_eq!(indirect, 2);
        // A function of 4 bytes at 0x104 (the c.j and beyond): c.j leaves it.
        let g = Func {
            name: "g".into(),
            start: 0x104,
            size: 2,
        };
        assert_eq!(riscv_branches(&elf, &g).0, [(0x104, 0x102)]);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0x1ff_fffe, 25), (-2_i32) as u32);
        assert_eq!(sign_extend(0x0ff_fffe, 25), 0x0ff_fffe);
    }
}
