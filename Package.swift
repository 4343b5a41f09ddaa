// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
/// The per-request modules (front, proxy, balancer, WSGI worker): release builds skip the run-time exclusivity
/// checks (about 5% of a proxied request's instructions); debug builds and tests keep them.
let hotPath: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Gantry",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "gantry", targets: ["gantry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Pure logic: no NIO.
        .target(name: "NginxConfig", swiftSettings: strict),
        .target(name: "Balancer", swiftSettings: hotPath),
        .target(name: "CPython", swiftSettings: strict),
        .target(name: "Supervisor", dependencies: [
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        // Networking.
        .target(name: "HTTPFront", dependencies: [
            "NginxConfig",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        .target(name: "ReverseProxy", dependencies: [
            "NginxConfig", "Balancer", "HTTPFront",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        .target(name: "WSGI", dependencies: [
            "CPython", "Supervisor",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: hotPath),
        .executableTarget(name: "gantry", dependencies: [
            "NginxConfig", "HTTPFront", "ReverseProxy", "WSGI", "Supervisor", "Balancer",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),

        .testTarget(name: "NginxConfigTests", dependencies: ["NginxConfig"]),
        .testTarget(name: "BalancerTests", dependencies: ["Balancer"]),
        .testTarget(name: "WSGITests", dependencies: ["WSGI", "CPython"]),
        .testTarget(name: "HTTPFrontTests", dependencies: ["HTTPFront", "NginxConfig"]),
        .testTarget(name: "ReverseProxyTests", dependencies: [
            "ReverseProxy", "Balancer", "HTTPFront", "NginxConfig",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor"]),
    ],
    swiftLanguageModes: [.v6]
)
