import BrokerAPI

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Text layout for people: aligned columns and times relative to now.
package enum Format {
    /// Left-aligned columns two spaces apart; the last column is not padded. `paint` colours a
    /// cell (row, column, text) after the widths are measured, so colour does not skew them.
    package static func table(
        _ rows: [[String]], indent: String = "", paint: (Int, Int, String) -> String = { $2 }
    ) -> String {
        guard let columns = rows.map(\.count).max(), columns > 0 else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.enumerated().map { rowIndex, row in
            var line = indent
            for (index, cell) in row.enumerated() {
                line += paint(rowIndex, index, cell)
                if index < row.count - 1 {
                    line += String(repeating: " ", count: widths[index] - cell.count + 2)
                }
            }
            return line
        }.joined(separator: "\n")
    }

    /// "in 59 min (14:00:00Z)", "3 min ago (13:57:00Z)"; the date is shown when it is not today (UTC).
    /// "-" for nil; the text itself when it is not RFC 3339.
    package static func time(_ text: String?, now: Date = Date()) -> String {
        guard let text else { return "-" }
        guard let date = BrokerJSON.parseDate(text) else { return text }
        let seconds = Int(date.timeIntervalSince(now).rounded())
        let relative = seconds >= 0 ? "in \(duration(seconds))" : "\(duration(-seconds)) ago"
        return "\(relative) (\(clock(text, now: now)))"
    }

    /// "14:00:00Z", or "2026-11-28 14:00:00Z" when not today (UTC).
    package static func clock(_ text: String, now: Date = Date()) -> String {
        guard let date = BrokerJSON.parseDate(text) else { return text }
        let absolute = BrokerJSON.formatDate(date) // 2026-11-27T14:00:00Z
        let sameDay = absolute.prefix(10) == BrokerJSON.formatDate(now).prefix(10)
        return sameDay ? String(absolute.dropFirst(11)) : absolute.replacing("T", with: " ")
    }

    /// "45 s", "59 min", "2 h 5 min", "3 d 4 h".
    package static func duration(_ seconds: Int) -> String {
        switch seconds {
        case ..<60: "\(seconds) s"
        case ..<3600: "\(seconds / 60) min"
        case ..<86400: "\(seconds / 3600) h \(seconds % 3600 / 60) min"
        default: "\(seconds / 86400) d \(seconds % 86400 / 3600) h"
        }
    }

    package static func plural(_ count: Int, _ singular: String, _ plural: String) -> String {
        "\(count) \(count == 1 ? singular : plural)"
    }
}
