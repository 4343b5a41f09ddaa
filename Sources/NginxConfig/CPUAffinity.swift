/// `worker_cpu_affinity`: which CPUs each of the front's event loops may run on.
///
/// nginx binds worker processes; Gantry binds the front's event-loop threads, loop `i` where nginx
/// binds worker `i`. Unlike nginx, Gantry binds by default when there is exactly one loop per
/// usable CPU (see `defaultBinding`), and `off` turns that off.
public enum CPUAffinity: Sendable, Equatable {
    /// No binding (`off`).
    case off
    /// `auto [mask]`: loop `i` on the `i`-th CPU of the mask (wrapping), the mask defaulting to the
    /// CPUs the process may use.
    case auto(mask: Set<Int>?)
    /// One mask per loop; loops past the last mask use the last one (nginx's rule).
    case masks([Set<Int>])
    /// The directive is absent: bind as `auto` only when every usable CPU gets exactly one loop.
    case defaultBinding

    /// The most CPUs a mask may name (glibc's `CPU_SETSIZE`, as nginx).
    public static let maxCPUs = 1024

    /// Parses the directive's arguments as nginx's `ngx_set_cpu_affinity` does (plus `off`).
    public static func parse(_ values: [String], at location: SourceLocation?) throws(ConfigError) -> CPUAffinity {
        if values == ["off"] { return .off }
        var rest = values[...]
        let isAuto = values.first == "auto"
        if isAuto {
            guard values.count <= 2 else {
                throw ConfigError("invalid number of arguments in \"worker_cpu_affinity\" directive", at: location)
            }
            rest = rest.dropFirst()
        }
        var masks: [Set<Int>] = []
        for text in rest {
            guard text.utf8.count <= maxCPUs else {
                throw ConfigError("\"worker_cpu_affinity\" supports up to \(maxCPUs) CPUs only", at: location)
            }
            var mask = Set<Int>()
            var bit = 0
            // The rightmost digit is CPU 0; spaces are skipped, as nginx does.
            for character in text.reversed() where character != " " {
                switch character {
                case "0": break
                case "1": mask.insert(bit)
                default:
                    throw ConfigError("invalid character \"\(character)\" in \"worker_cpu_affinity\"", at: location)
                }
                bit += 1
            }
            masks.append(mask)
        }
        return isAuto ? .auto(mask: masks.first) : .masks(masks)
    }

    /// The CPUs each of `loopCount` loops is bound to, in loop order; nil for a loop left unbound.
    /// `usable` is the set the process may run on (its affinity mask, sorted).
    public func binding(loopCount: Int, usable: [Int]) -> [[Int]?] {
        switch self {
        case .off:
            return Array(repeating: nil, count: loopCount)
        case .defaultBinding:
            guard loopCount > 1, loopCount == usable.count else { return Array(repeating: nil, count: loopCount) }
            return usable.map { [$0] }
        case .auto(let mask):
            let cpus = mask.map { $0.sorted() } ?? usable
            guard !cpus.isEmpty else { return Array(repeating: nil, count: loopCount) }
            return (0..<loopCount).map { [cpus[$0 % cpus.count]] }
        case .masks(let masks):
            return (0..<loopCount).map { index in
                let mask = masks[min(index, masks.count - 1)]
                return mask.isEmpty ? nil : mask.sorted()
            }
        }
    }
}
