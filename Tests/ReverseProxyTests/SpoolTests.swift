import Foundation
import NIOCore
import NIOPosix
import Logging
import NginxConfig
import Testing
@testable import ReverseProxy

@Suite struct SpoolLedgerTests {
    @Test func memoryFirstThenTheFileThenBackpressure() {
        var ledger = SpoolLedger(memoryLimit: 100, fileLimit: 150, writeLimit: 1000)
        #expect(ledger.place(60) == .memory)
        #expect(ledger.place(40) == .memory)
        #expect(ledger.acceptsMore)  // memory is full, the file has room
        #expect(ledger.place(100) == .file(offset: 0))
        #expect(ledger.place(50) == .file(offset: 100))
        // The file is full: one more read lands in memory, then the producer must wait.
        #expect(ledger.place(10) == .memory)
        #expect(!ledger.acceptsMore)
        ledger.sentFromMemory(110)
        #expect(ledger.acceptsMore)
    }

    @Test func writesInFlightAreBounded() {
        var ledger = SpoolLedger(memoryLimit: 0, fileLimit: 1 << 30, writeLimit: 64)
        #expect(ledger.place(64) == .file(offset: 0))
        #expect(!ledger.acceptsMore)  // a slow disk slows the producer
        ledger.fileWriteEnded(64, failed: false, stillQueued: true)
        #expect(ledger.acceptsMore)
        // Room left in memory does not matter while the file lags.
        var nearlyFull = SpoolLedger(memoryLimit: 100, fileLimit: 1 << 30, writeLimit: 64)
        #expect(nearlyFull.place(90) == .memory)
        #expect(nearlyFull.place(64) == .file(offset: 0))
        #expect(!nearlyFull.acceptsMore)
        #expect(ledger.memoryBytes == 0)
        #expect(ledger.fileLength == 64)
    }

    @Test func aFailedFileFallsBackToMemoryAndBackpressure() {
        var ledger = SpoolLedger(memoryLimit: 10, fileLimit: 1 << 30, writeLimit: 1000)
        #expect(ledger.place(10) == .memory)
        #expect(ledger.place(20) == .file(offset: 0))
        ledger.fileWriteEnded(20, failed: true, stillQueued: true)
        #expect(!ledger.fileUsable)
        #expect(ledger.memoryBytes == 30)
        #expect(!ledger.acceptsMore)
        #expect(ledger.place(5) == .memory)
    }

    @Test func noTempFileWhenItsLimitIsZero() {
        var ledger = SpoolLedger(memoryLimit: 10, fileLimit: 0, writeLimit: 1000)
        #expect(ledger.place(10) == .memory)
        #expect(!ledger.acceptsMore)
        #expect(ledger.place(10) == .memory)
    }
}

@Suite struct BodySpoolTests {
    /// Runs `body` on an event loop (where a spool lives); it completes the promise with what to check.
    func onLoop(_ body: @escaping @Sendable (any EventLoop, EventLoopPromise<String>) throws -> Void) async throws -> String {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: String.self)
        loop.execute {
            do { try body(loop, promise) } catch { promise.fail(error) }
        }
        return try await promise.futureResult.get()
    }

    /// Calls `then` once every file write of `spool` ended.
    static func whenWritten(_ spool: BodySpool, then: @escaping () throws -> String, _ promise: EventLoopPromise<String>) {
        func check() {
            guard spool.writesDone else { return }
            spool.onProgress = nil
            do { promise.succeed(try then()) } catch { promise.fail(error) }
        }
        spool.onProgress = { check() }
        check()
    }

    /// Reads every part back (regions from their file) and returns the content in order.
    static func collect(_ parts: [(data: IOData, handle: NIOFileHandle?)]) throws -> String {
        var text = ""
        for part in parts {
            switch part.data {
            case .byteBuffer(let buffer):
                text += String(buffer: buffer)
            case .fileRegion(let region):
                let length = region.endIndex - region.readerIndex
                var data = [UInt8](repeating: 0, count: length)
                try part.handle!.withUnsafeFileDescriptor { descriptor in
                    _ = pread(descriptor, &data, length, off_t(region.readerIndex))
                }
                text += String(decoding: data, as: UTF8.self)
                try part.handle!.close()
            }
        }
        return text
    }

    @Test func aReplayableSpoolKeepsItsBytesInOrderAcrossMemoryAndFile() async throws {
        let directory = NSTemporaryDirectory() + "gantry-spool-\(UUID().uuidString)/nested"
        let text = try await onLoop { loop, promise in
            let spool = BodySpool(mode: .replayable, memoryLimit: 4, fileLimit: .max, writeLimit: 0,
                                  directory: directory, loop: loop, logger: Logger(label: "test"))
            for piece in ["ab", "cd", "ef", "gh", "ij"] { spool.append(ByteBuffer(string: piece)) }
            Self.whenWritten(spool, then: {
                #expect(spool.fileLength == 6)
                #expect(!spool.fileFailed)
                let first = try Self.collect(spool.replayParts()!)
                let again = try Self.collect(spool.replayParts()!)  // a retry sends it all again
                spool.close()
                return first + "|" + again
            }, promise)
        }
        #expect(text == "abcdefghij|abcdefghij")
        // The temp file is unlinked at once: the directory (made 0700) stays empty.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
    }

    @Test func aConsumableSpoolHandsOutMemoryThenCoalescedFileRegions() async throws {
        let directory = NSTemporaryDirectory() + "gantry-spool-\(UUID().uuidString)"
        let text = try await onLoop { loop, promise in
            let spool = BodySpool(mode: .consumable, memoryLimit: 2, fileLimit: .max, writeLimit: 0,
                                  directory: directory, loop: loop, logger: Logger(label: "test"))
            for piece in ["ab", "cd", "ef", "gh"] { spool.append(ByteBuffer(string: piece)) }
            Self.whenWritten(spool, then: {
                var parts: [(data: IOData, handle: NIOFileHandle?)] = []
                while let next = spool.takeNext() { parts.append(next) }
                #expect(spool.isEmpty)
                #expect(parts.count == 2)  // "ab" from memory, "cdefgh" as one region
                spool.close()
                return try Self.collect(parts)
            }, promise)
        }
        #expect(text == "abcdefgh")
    }

    @Test func anUnusableDirectoryKeepsTheBytesInMemory() async throws {
        let text = try await onLoop { loop, promise in
            let spool = BodySpool(mode: .consumable, memoryLimit: 2, fileLimit: .max, writeLimit: 0,
                                  directory: "/proc/gantry-cannot-be-made", loop: loop, logger: Logger(label: "test"))
            for piece in ["ab", "cd"] { spool.append(ByteBuffer(string: piece)) }
            Self.whenWritten(spool, then: {
                #expect(spool.fileFailed)
                #expect(!spool.acceptsMore)
                var parts: [(data: IOData, handle: NIOFileHandle?)] = []
                while let next = spool.takeNext() { parts.append(next) }
                spool.close()
                return try Self.collect(parts)
            }, promise)
        }
        #expect(text == "abcd")
    }
}

@Suite struct BufferingSettingsTests {
    @Test func buffersAndTempPathsFollowTheDirectives() throws {
        let configuration = try loadConfiguration("""
        events {}
        http {
            proxy_buffers 16 8k;
            proxy_max_temp_file_size 10m;
            server {
                listen 8080;
                location / { proxy_pass http://127.0.0.1:9000; proxy_temp_path /var/tmp/gantry-proxy 1 2; }
                location /default { proxy_pass http://127.0.0.1:9000; proxy_buffers 8 4k; proxy_max_temp_file_size 0; }
            }
        }
        """)
        let (scope, match) = locationScope(configuration, 0)
        let settings = try #require(try ProxySettings.compile(location: scope, match: match))
        #expect(settings.responseMemoryLimit == 16 * 8192)
        #expect(settings.maxTempFileSize == 10 * 1024 * 1024)
        #expect(settings.tempFileWriteSize == 2 * 8192)
        #expect(settings.tempPath == "/var/tmp/gantry-proxy")
        let (second, secondMatch) = locationScope(configuration, 1)
        let other = try #require(try ProxySettings.compile(location: second, match: secondMatch))
        #expect(other.responseMemoryLimit == 8 * 4096)
        #expect(other.maxTempFileSize == 0)
        #expect(other.tempPath == "proxy_temp")
    }

    @Test func fewerThanTwoBuffersIsAnError() throws {
        let configuration = try loadConfiguration("""
        events {}
        http { server { listen 8080; location / { proxy_pass http://127.0.0.1:9000; proxy_buffers 1 4k; } } }
        """)
        let (scope, match) = locationScope(configuration, 0)
        #expect(throws: ConfigError.self) { try ProxySettings.compile(location: scope, match: match) }
    }
}
