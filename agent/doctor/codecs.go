package doctor

import "strings"

// checkCodecs says which codecs recordings and listeners would hear as
// silence: libavcodec (iLBC, G.723.1) is opened on the first such call,
// so its absence shows nowhere before one comes.
func checkCodecs(r *Report, env *Env) {
	yes, no := env.Codecs()
	if len(no) > 0 {
		r.add("codecs", StatusWarn, "install the codec libraries the package depends on (libavcodec, libopus, bcg729, libgsm, libspeex, spandsp); `pbx-agent version` lists the silent codecs",
			"plays as silence: %s", strings.Join(no, " "))
		return
	}
	r.add("codecs", StatusOK, "", "decodes %s", strings.Join(yes, " "))
}
