/// nginx's value syntaxes (`ngx_parse_size`, `ngx_parse_offset`, `ngx_parse_time`, flags),
/// shared by every module that reads a directive, so all of them accept and refuse the same text.
public enum ConfigValues {
    /// `1024`, `8k`, `1m` (and `1g` when `allowGiga`, as nginx's offsets). nil when invalid.
    public static func parseSize(_ text: String, allowGiga: Bool = true) -> Int? {
        guard let last = text.last else { return nil }
        var digits = Substring(text)
        var scale = 1
        switch last {
        case "k", "K": scale = 1 << 10; digits = digits.dropLast()
        case "m", "M": scale = 1 << 20; digits = digits.dropLast()
        case "g" where allowGiga, "G" where allowGiga: scale = 1 << 30; digits = digits.dropLast()
        default: break
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(digits), value <= Int.max / scale else { return nil }
        return value * scale
    }

    public enum TimeUnit: Sendable { case seconds, milliseconds }

    /// nginx's times (`ngx_parse_time`): `30`, `30s`, `500ms`, `1h30m`, `1h 30m`, `2d`, `1w`, `1M`, `1y`
    /// (units in descending order, each once). A bare number is seconds. Returns the value in `unit`;
    /// nil when invalid (`ms` is invalid where nginx wants seconds, `y` where it wants milliseconds).
    public static func parseTime(_ text: String, unit: TimeUnit) -> Int? {
        let isSeconds = unit == .seconds
        // Steps, largest first, as nginx's st_year … st_msec, st_last.
        let year = 1, month = 2, week = 3, day = 4, hour = 5, minute = 6, second = 7, milli = 8, last = 9
        var step = isSeconds ? 0 : month
        var total = 0, value = 0
        var valid = false
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(c - 48))
                if overflow1 || overflow2 { return nil }
                value = sum
                valid = true
                continue
            }
            var scale: Int
            switch c {
            case UInt8(ascii: "y"):
                if step > 0 { return nil }
                step = year; scale = 60 * 60 * 24 * 365
            case UInt8(ascii: "M"):
                if step >= month { return nil }
                step = month; scale = 60 * 60 * 24 * 30
            case UInt8(ascii: "w"):
                if step >= week { return nil }
                step = week; scale = 60 * 60 * 24 * 7
            case UInt8(ascii: "d"):
                if step >= day { return nil }
                step = day; scale = 60 * 60 * 24
            case UInt8(ascii: "h"):
                if step >= hour { return nil }
                step = hour; scale = 60 * 60
            case UInt8(ascii: "m"):
                if i < bytes.count && bytes[i] == UInt8(ascii: "s") {
                    if isSeconds || step >= milli { return nil }
                    i += 1
                    step = milli; scale = 1
                } else {
                    if step >= minute { return nil }
                    step = minute; scale = 60
                }
            case UInt8(ascii: "s"):
                if step >= second { return nil }
                step = second; scale = 1
            case UInt8(ascii: " "):
                if step >= second { return nil }
                step = last; scale = 1
            default:
                return nil
            }
            if step != milli && !isSeconds { scale *= 1000 }
            let (scaled, overflow) = value.multipliedReportingOverflow(by: scale)
            if overflow || total > Int.max - scaled { return nil }
            total += scaled
            value = 0
            while i < bytes.count && bytes[i] == UInt8(ascii: " ") { i += 1 }
        }
        guard valid else { return nil }
        if !isSeconds {
            let (scaled, overflow) = value.multipliedReportingOverflow(by: 1000)
            if overflow { return nil }
            value = scaled
        }
        guard total <= Int.max - value else { return nil }
        return total + value
    }

    /// `on` / `off`, case-insensitive as in nginx. nil when neither.
    public static func parseFlag(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on": true
        case "off": false
        default: nil
        }
    }

    /// A non-negative decimal integer (`ngx_atoi`). nil when invalid.
    public static func parseNumber(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }
}

/// Typed reads of one directive's argument, failing with nginx's own messages.
extension Directive {
    private func argument(_ index: Int) throws(ConfigError) -> String {
        guard index < arguments.count else {
            throw ConfigError("invalid number of arguments in \"\(name)\" directive", at: location)
        }
        return arguments[index].value
    }

    /// `on`/`off`: `invalid value "x" in "sendfile" directive, it must be "on" or "off"`.
    public func flag(_ index: Int = 0) throws(ConfigError) -> Bool {
        let text = try argument(index)
        guard let value = ConfigValues.parseFlag(text) else {
            throw ConfigError("invalid value \"\(text)\" in \"\(name)\" directive, it must be \"on\" or \"off\"", at: location)
        }
        return value
    }

    /// A size in bytes: `"client_max_body_size" directive invalid value`.
    public func size(_ index: Int = 0, allowGiga: Bool = true) throws(ConfigError) -> Int {
        guard let value = ConfigValues.parseSize(try argument(index), allowGiga: allowGiga) else {
            throw ConfigError("\"\(name)\" directive invalid value", at: location)
        }
        return value
    }

    /// A time in whole seconds: `"keepalive_timeout" directive invalid value`.
    public func seconds(_ index: Int = 0) throws(ConfigError) -> Int {
        guard let value = ConfigValues.parseTime(try argument(index), unit: .seconds) else {
            throw ConfigError("\"\(name)\" directive invalid value", at: location)
        }
        return value
    }

    /// A time in milliseconds: `"proxy_read_timeout" directive invalid value`.
    public func milliseconds(_ index: Int = 0) throws(ConfigError) -> Int {
        guard let value = ConfigValues.parseTime(try argument(index), unit: .milliseconds) else {
            throw ConfigError("\"\(name)\" directive invalid value", at: location)
        }
        return value
    }

    /// A time as a `Duration` (milliseconds precision).
    public func duration(_ index: Int = 0) throws(ConfigError) -> Duration {
        .milliseconds(try milliseconds(index))
    }

    /// A non-negative integer: `"worker_connections" directive invalid number`.
    public func number(_ index: Int = 0) throws(ConfigError) -> Int {
        guard let value = ConfigValues.parseNumber(try argument(index)) else {
            throw ConfigError("\"\(name)\" directive invalid number", at: location)
        }
        return value
    }
}

/// Inherited typed reads with a default, e.g. `scope.flag("sendfile", default: false)`.
/// Values were checked at load, so these only fail for directives read with the wrong type.
extension ConfigScope {
    public func flag(_ name: String, default value: Bool) throws(ConfigError) -> Bool {
        guard let directive = effective(name) else { return value }
        return try directive.flag()
    }

    public func size(_ name: String, default value: Int) throws(ConfigError) -> Int {
        guard let directive = effective(name) else { return value }
        return try directive.size()
    }

    public func milliseconds(_ name: String, default value: Int) throws(ConfigError) -> Int {
        guard let directive = effective(name) else { return value }
        return try directive.milliseconds()
    }

    public func seconds(_ name: String, default value: Int) throws(ConfigError) -> Int {
        guard let directive = effective(name) else { return value }
        return try directive.seconds()
    }

    public func number(_ name: String, default value: Int) throws(ConfigError) -> Int {
        guard let directive = effective(name) else { return value }
        return try directive.number()
    }
}
