import Foundation
import KeyholdCore

/// Printing for people (aligned tables) and for scripts (JSON).
public enum Output {
    public static func json(_ value: some Encodable) throws {
        let data = try AdminJSON.encoder(pretty: true).encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    /// Prints rows under a header, each column as wide as its widest cell.
    public static func table(_ header: [String], _ rows: [[String]]) {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }

    /// A size as people read it: 512 B, 3.2 KiB, 1.0 GiB.
    public static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func stderr(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
