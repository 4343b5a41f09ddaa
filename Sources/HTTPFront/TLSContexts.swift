#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOSSL
import NginxConfig

/// The TLS contexts of the servers behind `listen … ssl` addresses, built when the configuration
/// is loaded so that `gantry -t` reads the certificate and key files, and a reload that names a
/// broken one is refused before anything changes. Servers with the same settings (most often
/// inherited from `http`) share one context.
final class TLSContexts {
    private let configuration: Configuration
    private var byServer: [ObjectIdentifier: NIOSSLContext] = [:]
    private var bySettings: [String: NIOSSLContext] = [:]

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The context of `server`, which answers on the TLS address `listen` (for nginx's error when
    /// the server has no certificate).
    func context(for server: VirtualServer, listen: ListenAddress) throws(ConfigError) -> NIOSSLContext {
        if let known = byServer[ObjectIdentifier(server)] { return known }
        let scope = server.block.scope
        guard let certificate = scope.effective("ssl_certificate") else {
            throw ConfigError("no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive", at: listen.location)
        }
        guard let key = scope.effective("ssl_certificate_key") else {
            throw ConfigError("no \"ssl_certificate_key\" is defined for certificate \"\(certificate.values[0])\"", at: certificate.location)
        }
        for name in ["ssl_certificate", "ssl_certificate_key"] where scope.effectiveList(name).count > 1 {
            throw ConfigError("a second \"\(name)\" (nginx's RSA + ECDSA pairs) is not supported by gantry", at: scope.effectiveList(name)[1].location)
        }
        let protocols = scope.effective("ssl_protocols")
        let ciphers = scope.effective("ssl_ciphers")
        let passwords = scope.effective("ssl_password_file")
        let settingsKey = [certificate, key, protocols, ciphers, passwords].map { $0?.values.joined(separator: " ") ?? "-" }.joined(separator: "\n")
        if let shared = bySettings[settingsKey] {
            byServer[ObjectIdentifier(server)] = shared
            return shared
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try loadCertificates(certificate).map { .certificate($0) },
            privateKey: .privateKey(try loadKey(key, passwords: passwords)))
        let versions = try Self.versions(protocols)
        tls.minimumTLSVersion = versions.minimum
        tls.maximumTLSVersion = versions.maximum
        if let ciphers { tls.cipherSuites = ciphers.values[0] }
        // nginx sends its close_notify and closes; it does not wait for the client's.
        tls.shutdownTimeout = .seconds(1)
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            let culprit = ciphers ?? key
            throw ConfigError("cannot use the TLS settings of this server (\(certificate.values[0]), \(key.values[0])\(ciphers.map { ", ciphers \"\($0.values[0])\"" } ?? "")): \(error)", at: culprit.location)
        }
        bySettings[settingsKey] = context
        byServer[ObjectIdentifier(server)] = context
        return context
    }

    /// nginx takes these paths against the configuration's directory (`ngx_conf_full_name` with
    /// the conf prefix), not `-p`.
    private func path(_ directive: Directive) throws(ConfigError) -> String {
        let value = directive.values[0]
        if value.hasPrefix("data:") || value.hasPrefix("engine:") || value.contains("$") {
            throw ConfigError("\"\(directive.name) \(value)\": only a file path is supported by gantry", at: directive.location)
        }
        if value.hasPrefix("/") { return value }
        let file = configuration.configFile
        guard let slash = file.lastIndex(of: "/") else { return configuration.fullPath(value) }
        return String(file[...slash]) + value
    }

    private func readable(_ path: String, _ what: String, _ directive: Directive) throws(ConfigError) {
        if access(path, R_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw ConfigError("cannot load \(what) \"\(path)\": \(reason)", at: directive.location)
        }
    }

    private func loadCertificates(_ directive: Directive) throws(ConfigError) -> [NIOSSLCertificate] {
        let path = try path(directive)
        try readable(path, "certificate", directive)
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw ConfigError("cannot load certificate \"\(path)\": not a PEM certificate (\(error))", at: directive.location)
        }
        guard !chain.isEmpty else {
            throw ConfigError("cannot load certificate \"\(path)\": no certificate in it", at: directive.location)
        }
        return chain
    }

    /// nginx's `ssl_password_file`: each line a passphrase, tried in turn.
    private func loadKey(_ directive: Directive, passwords: Directive?) throws(ConfigError) -> NIOSSLPrivateKey {
        let path = try path(directive)
        try readable(path, "certificate key", directive)
        guard let passwords else {
            do { return try NIOSSLPrivateKey(file: path, format: .pem) } catch {
                throw ConfigError("cannot load certificate key \"\(path)\": not a PEM private key, or encrypted without \"ssl_password_file\" (\(error))", at: directive.location)
            }
        }
        let passwordPath = try self.path(passwords)
        try readable(passwordPath, "password file", passwords)
        guard let file = fopen(passwordPath, "r") else {
            throw ConfigError("cannot open password file \"\(passwordPath)\"", at: passwords.location)
        }
        defer { fclose(file) }
        var phrases: [[UInt8]] = []
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            var bytes = Array(String(cString: line).utf8)
            while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
            phrases.append(bytes)
        }
        for phrase in phrases {
            if let key = try? NIOSSLPrivateKey(file: path, format: .pem, passphraseCallback: { (set: NIOSSLPassphraseSetter<[UInt8]>) in set(phrase) }) {
                return key
            }
        }
        throw ConfigError("cannot load certificate key \"\(path)\": no passphrase of \"\(passwordPath)\" opens it", at: directive.location)
    }

    /// `ssl_protocols`: the lowest to the highest version named. Default TLS 1.2 and 1.3.
    static func versions(_ directive: Directive?) throws(ConfigError) -> (minimum: TLSVersion, maximum: TLSVersion) {
        guard let directive else { return (.tlsv12, .tlsv13) }
        let order: [(String, TLSVersion)] = [("tlsv1", .tlsv1), ("tlsv1.1", .tlsv11), ("tlsv1.2", .tlsv12), ("tlsv1.3", .tlsv13)]
        var named: [Int] = []
        for value in directive.values {
            guard let index = order.firstIndex(where: { $0.0 == value.lowercased() }) else {
                throw ConfigError("\"\(value)\" in \"ssl_protocols\" is not supported by gantry (BoringSSL has no SSLv2 or SSLv3)", at: directive.location)
            }
            named.append(index)
        }
        return (order[named.min()!].1, order[named.max()!].1)
    }
}
