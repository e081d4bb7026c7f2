/// ANSI colours for people at a terminal, and nothing otherwise.
package struct Palette: Sendable {
    package var enabled: Bool

    package init(enabled: Bool) { self.enabled = enabled }

    /// No colour.
    package static let plain = Palette(enabled: false)

    /// Colour only on a terminal, never with `NO_COLOR` set to anything (no-color.org) or on a
    /// `TERM=dumb` terminal.
    package static func forOutput(isTerminal: Bool, environment: (String) -> String?) -> Palette {
        let noColor = environment("NO_COLOR").map { !$0.isEmpty } ?? false
        return Palette(enabled: isTerminal && !noColor && environment("TERM") != "dumb")
    }

    private func paint(_ text: String, _ code: String) -> String {
        enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    package func red(_ text: String) -> String { paint(text, "31") }
    package func green(_ text: String) -> String { paint(text, "32") }
    package func yellow(_ text: String) -> String { paint(text, "33") }
    package func bold(_ text: String) -> String { paint(text, "1") }
    package func dim(_ text: String) -> String { paint(text, "2") }
}
