#if canImport(Glibc)
import Glibc
#endif

/// The account a pool's workers run as when it is not the master's own (`user` in an `app_pool`).
///
/// Only a process that is still root can switch to it, so such workers are started by the
/// ``PrivilegedSpawner`` the master keeps from before it dropped its privileges.
public struct WorkerCredentials: Hashable, Sendable, CustomStringConvertible {
    public var uid: uid_t
    public var gid: gid_t
    /// Supplementary groups (the user's, from `/etc/group`, as `initgroups` would set them).
    public var groups: [gid_t]

    public init(uid: uid_t, gid: gid_t, groups: [gid_t]) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The account of `user NAME [GROUP]`: the group defaults to the user's primary group.
    public static func lookUp(user: String, group: String?) throws(SystemError) -> WorkerCredentials {
        guard let account = getpwnam(user) else { throw SystemError("getpwnam(\"\(user)\")", ENOENT) }
        var gid = account.pointee.pw_gid
        if let group {
            guard let entry = getgrnam(group) else { throw SystemError("getgrnam(\"\(group)\")", ENOENT) }
            gid = entry.pointee.gr_gid
        }
        let uid = account.pointee.pw_uid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, gid, &groups, &count)
        }
        return WorkerCredentials(uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))))
    }

    /// `uid:gid:g1,g2` — how the master tells the spawner which accounts it may start workers as.
    public var encoded: String {
        "\(uid):\(gid):" + groups.map(String.init).joined(separator: ",")
    }

    public init?(encoded: String) {
        let parts = encoded.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let uid = uid_t(parts[0]), let gid = gid_t(parts[1]) else { return nil }
        var groups: [gid_t] = []
        for part in parts[2].split(separator: ",") {
            guard let group = gid_t(part) else { return nil }
            groups.append(group)
        }
        self.init(uid: uid, gid: gid, groups: groups)
    }

    public var description: String { "uid \(uid), gid \(gid)" }
}
