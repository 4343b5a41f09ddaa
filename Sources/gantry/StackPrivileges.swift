#if canImport(Glibc)
import Glibc
#endif

/// Dropping root after the ports are bound: nginx's `user USER [GROUP];`.
///
/// Gantry runs the front and the supervisor in one process, so the whole process (and the
/// workers it spawns afterwards) becomes `user`. The private socket directory is handed to that
/// user first, so the sockets in it are reachable by the front and no one else.
struct StackPrivileges {
    var uid: uid_t
    var gid: gid_t
    var userName: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The account of `user NAME [GROUP]`; the group defaults to the user's primary group
    /// (nginx: a group of the same name as the user).
    static func resolve(user: String, group: String?) throws(Failure) -> StackPrivileges {
        guard let account = getpwnam(user) else {
            throw Failure(description: "getpwnam(\"\(user)\") failed")
        }
        var gid = account.pointee.pw_gid
        if let group {
            guard let entry = getgrnam(group) else { throw Failure(description: "getgrnam(\"\(group)\") failed") }
            gid = entry.pointee.gr_gid
        }
        return StackPrivileges(uid: account.pointee.pw_uid, gid: gid, userName: user)
    }

    /// Gives `path` (a directory Gantry created) to the user.
    func hand(_ path: String) {
        _ = chown(path, uid, gid)
    }

    /// setgroups, setgid, setuid — for every thread (glibc applies set*id process-wide).
    func drop() throws(Failure) {
        guard initgroups(userName, gid) == 0 else { throw Failure(description: "initgroups(\(userName), \(gid)) failed (\(errno): \(String(cString: strerror(errno))))") }
        guard setgid(gid) == 0 else { throw Failure(description: "setgid(\(gid)) failed (\(errno): \(String(cString: strerror(errno))))") }
        guard setuid(uid) == 0 else { throw Failure(description: "setuid(\(uid)) failed (\(errno): \(String(cString: strerror(errno))))") }
    }
}
