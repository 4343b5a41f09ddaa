import NginxConfig

/// nginx's value syntaxes for the proxy's directives (time, size, on/off), with its error wording.
enum DirectiveValues {
    /// `ngx_parse_time`: `500ms`, `10s`, `1m`, `1h`, `1d`, combinations like `1m30s`; a bare number is seconds.
    static func milliseconds(_ text: String) -> Int64? {
        guard !text.isEmpty else { return nil }
        var total: Int64 = 0
        var number: Int64?
        var chars = Array(text.lowercased())
        var i = 0
        chars.append(" ")
        while i < chars.count - 1 {
            let c = chars[i]
            if let digit = c.wholeNumberValue, c.isASCII {
                number = (number ?? 0) * 10 + Int64(digit)
                i += 1
                continue
            }
            guard let value = number else { return nil }
            let unit: Int64
            switch c {
            case "m" where chars[i + 1] == "s": unit = 1; i += 1
            case "s": unit = 1000
            case "m": unit = 60_000
            case "h": unit = 3_600_000
            case "d": unit = 86_400_000
            case "w": unit = 604_800_000
            case "y": unit = 31_536_000_000
            default: return nil
            }
            total += value * unit
            number = nil
            i += 1
        }
        if let value = number { total += value * 1000 }
        return total
    }

    /// `ngx_parse_size`: `512`, `16k`, `1m`, `1g`.
    static func bytes(_ text: String) -> Int64? {
        let lower = text.lowercased()
        guard let last = lower.last else { return nil }
        let multiplier: Int64
        var digits = Substring(lower)
        switch last {
        case "k": multiplier = 1024; digits = digits.dropLast()
        case "m": multiplier = 1024 * 1024; digits = digits.dropLast()
        case "g": multiplier = 1024 * 1024 * 1024; digits = digits.dropLast()
        default: multiplier = 1
        }
        guard let value = Int64(digits), value >= 0 else { return nil }
        return value * multiplier
    }

    static func time(_ directive: Directive, at index: Int = 0) throws(ConfigError) -> Int64 {
        guard index < directive.arguments.count, let value = milliseconds(directive.arguments[index].value) else {
            throw invalidValue(directive, index)
        }
        return value
    }

    static func size(_ directive: Directive, at index: Int = 0) throws(ConfigError) -> Int64 {
        guard index < directive.arguments.count, let value = bytes(directive.arguments[index].value) else {
            throw invalidValue(directive, index)
        }
        return value
    }

    static func flag(_ directive: Directive) throws(ConfigError) -> Bool {
        switch directive.arguments.first?.value.lowercased() {
        case "on": return true
        case "off": return false
        default:
            throw ConfigError("invalid value \"\(directive.arguments.first?.value ?? "")\" in \"\(directive.name)\" directive, it must be \"on\" or \"off\"",
                              at: directive.location)
        }
    }

    static func integer(_ directive: Directive, at index: Int = 0) throws(ConfigError) -> Int {
        guard index < directive.arguments.count, let value = Int(directive.arguments[index].value), value >= 0 else {
            throw invalidValue(directive, index)
        }
        return value
    }

    static func invalidValue(_ directive: Directive, _ index: Int) -> ConfigError {
        let value = index < directive.arguments.count ? directive.arguments[index].value : ""
        return ConfigError("invalid value \"\(value)\" in \"\(directive.name)\" directive", at: directive.location)
    }
}
