package codec

// Helpers of the package's own tests, for its external tests
// (ffmpeg_test.go, which needs sniffer/audio's Ogg writer).
var (
	EncodeTone = encodeTone
	DecodeAll  = decodeAll
	DecName    = decName
	Need       = need
)

// ILBC20 labels iLBC's 20 ms mode in the tests.
const ILBC20 = ilbc20
