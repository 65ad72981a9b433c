import NVMeGate

/// The primary partitions of an MBR in LBA 0, as Linux's msdos parser reads them: signature
/// 55AAh at byte 510, four 16-byte entries from byte 446 (type at +4, start at +8, sectors
/// at +12). Linux counts MBR sectors in the device's logical blocks, so the values are LBAs
/// of the namespace's current format. Node pN is slot N: an empty slot before a used one
/// gives a zero-length range so later slots keep their numbers. Partitions starting past
/// the end are dropped and ones running past it are truncated, as Linux does. A GPT
/// (protective type EEh) and extended partitions are not parsed.
func mbrPartitions(_ n: NamespaceState) -> [LBARange] {
    let nsze = n.blockCount
    guard nsze > 0 else { return [] }
    var sector = [UInt8](repeating: 0, count: 512)
    let ok = sector.withUnsafeMutableBytes { b -> Bool in
        do { try n.store.read(at: 0, into: b); return true } catch { return false }
    }
    guard ok, sector[510] == 0x55, sector[511] == 0xAA else { return [] }
    func le32(_ o: Int) -> UInt64 {
        UInt64(sector[o]) | UInt64(sector[o + 1]) << 8 | UInt64(sector[o + 2]) << 16 | UInt64(sector[o + 3]) << 24
    }
    var out: [LBARange] = []
    for slot in 0..<4 {
        let e = 446 + 16 * slot
        let type = sector[e + 4]
        var start = le32(e + 8), count = le32(e + 12)
        if type == 0 || type == 0xEE || type == 0x05 || type == 0x0F || type == 0x85 || count == 0 || start >= nsze {
            start = 0; count = 0
        } else if count > nsze - start {
            count = nsze - start
        }
        out.append(LBARange(start: start, count: count))
    }
    while let last = out.last, last.count == 0 { out.removeLast() }
    return out
}
