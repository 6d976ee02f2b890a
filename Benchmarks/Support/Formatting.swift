import Foundation

/// `text` padded with spaces to `width` (on the left when `left`).
public func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}

/// A size in KiB as MiB with one decimal.
public func mebibytes(_ kib: Int?) -> String {
    kib.map { String(format: "%.1f MiB", Double($0) / 1024) } ?? "?"
}
