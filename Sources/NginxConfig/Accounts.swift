#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `user` and `group` checks as nginx's `ngx_set_user` makes them, at load time.
enum Accounts {
    static func userExists(_ name: String) -> Bool {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0 && result != nil
    }

    static func groupExists(_ name: String) -> Bool {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0 && result != nil
    }

    /// `user USER [GROUP];` in main (the group defaults to the user's name, as in nginx), or
    /// `user`/`group` in an `app_pool`. Returns a warning when not running as root, as nginx does.
    static func check(_ directive: Directive, inAppPool: Bool) throws(ConfigError) -> ConfigWarning? {
        let values = directive.values
        if !inAppPool && geteuid() != 0 {
            return ConfigWarning("the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored", at: directive.location)
        }
        if directive.name == "group" {
            guard groupExists(values[0]) else { throw ConfigError("getgrnam(\"\(values[0])\") failed", at: directive.location) }
            return nil
        }
        guard userExists(values[0]) else { throw ConfigError("getpwnam(\"\(values[0])\") failed", at: directive.location) }
        if !inAppPool {
            let group = values.count == 2 ? values[1] : values[0]
            guard groupExists(group) else { throw ConfigError("getgrnam(\"\(group)\") failed", at: directive.location) }
        }
        return nil
    }
}
