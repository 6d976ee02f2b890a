public import KeyholdSandbox

/// The unit properties of a sandbox's boundary, which Keyhold sets whatever the profile says: a network of its own,
/// `/run` and `/var/lib` hidden, its name files and its state mounted in. One list for the daemon's units and the
/// benchmark's floor (Benchmarks/SandboxStart), so that the floor measures the same boundary.
public enum BoundaryUnitProperties {
    /// - Parameters:
    ///   - hostsFile, resolvConfFile: the sandbox's `/etc/hosts` and `/etc/resolv.conf`, as systemd sees them.
    ///   - stateDirectory: the `StateDirectory=` value; nil for a warm pool's unit, whose tenant's state is mounted in
    ///     when a start takes it (`/var/lib` is then a writable tmpfs that only root, that is systemd, can write).
    ///   - notifySocket: bind systemd's notify socket back (a `Type=notify` agent).
    ///   - trustBundleFile: the sandbox's bundle of trusted roots, mounted over Debian's
    ///     (`/etc/ssl/certs/ca-certificates.crt`); nil on a host without one.
    public static func make(
        hostsFile: String, resolvConfFile: String, stateDirectory: String?, notifySocket: Bool, trustBundleFile: String? = nil
    ) -> [UnitProperty] {
        var binds = [BindPath(source: hostsFile, destination: "/etc/hosts"), BindPath(source: resolvConfFile, destination: "/etc/resolv.conf")]
        if let trustBundleFile { binds.append(BindPath(source: trustBundleFile, destination: "/etc/ssl/certs/ca-certificates.crt")) }
        // A notify agent's $NOTIFY_SOCKET, back inside the hidden /run (systemd takes READY=1 only from the unit's main
        // process, for its own unit).
        if notifySocket { binds.append(BindPath(source: "/run/systemd/notify", destination: "/run/systemd/notify")) }
        var properties: [UnitProperty] = [
            // A network namespace of its own, loopback only: its ways out are the listeners the daemon puts there.
            .bool("PrivateNetwork", true),
            // systemd's runtime state (other tenants' unit files, its sockets) and the host's state (other tenants'
            // state directories among it) stay out of sight; the agent's own state is mounted back in.
            .temporaryFileSystems(
                "TemporaryFileSystem",
                [
                    TemporaryFileSystem(path: "/run", options: "ro,mode=0755"),
                    TemporaryFileSystem(path: "/var/lib", options: stateDirectory == nil ? "mode=0755" : "ro,mode=0755"),
                ]),
            .bindPaths("BindReadOnlyPaths", binds),
        ]
        if let stateDirectory { properties.append(.strings("StateDirectory", [stateDirectory])) }
        return properties
    }
}
