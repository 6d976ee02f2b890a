import KeyholdCore
import Testing

/// An error's class decides its HTTP status, never its message's text.
struct ErrorCodeTests {
    @Test func eachCodeCarriesItsStatusAndAnUnauthenticatedCallerIsToldForbiddenWith401() {
        let codes: [(KeyholdError.Code, Int, String)] = [
            (.invalidInput, 400, "invalidInput"), (.notFound, 404, "notFound"), (.conflict, 409, "conflict"),
            (.unavailable, 503, "unavailable"), (.forbidden, 403, "forbidden"), (.unauthenticated, 401, "forbidden"), (.failed, 502, "failed"),
        ]
        for (code, status, name) in codes {
            #expect(code.httpStatus == status && code.description == name, "\(code)")
        }
        // Whatever a message says, its code decides: "missing" no longer means 401.
        #expect(KeyholdError.forbidden("missing rights to this tenant").code.httpStatus == 403)
        #expect(KeyholdError.Code(name: "forbidden") == .forbidden)
    }
}
