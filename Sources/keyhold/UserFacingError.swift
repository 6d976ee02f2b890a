import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import KeyholdVault

/// The errors whose message is for the user as is (one line, no stack trace).
enum UserFacingError {
    static func matches(_ error: any Error) -> Bool {
        error is VaultError || error is StoreError || error is PlanError || error is ProfileError || error is SystemdError
    }
}
