package transparency

// VerifyLeafInclusion checks an inclusion proof of any leaf hash, for the
// published RFC 9162 test data (whose leaves are not block hashes).
var VerifyLeafInclusion = verifyLeaf
