import HTTPTypes
import KeyholdOrchestration

/// A console request that cannot be served, with the status it is answered with and a sentence for the page.
///
/// The message is shown to the tenant as it is: it says what to do next and never holds a pasted key.
struct ConsolePageError: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    static let signedOut = ConsolePageError(
        .unauthorized, "You are not signed in. Open the one-time sign-in link your hosting provider gave you, or ask them for a new one.")
    static let missingCSRF = ConsolePageError(
        .forbidden,
        "This form was not sent from your console page (its security token is missing or wrong), so nothing was changed. Reload the console and try again."
    )
}
