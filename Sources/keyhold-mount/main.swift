// keyhold-mount: the daemon's helper that mounts a tenant's state into a warm unit's mount namespace.
// Single-threaded (setns(2) into a mount namespace requires it), Foundation-free, run as root by the daemon only.
MountHelper.run()
