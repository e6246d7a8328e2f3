package risk

// ProfileSignIns returns how many sign-ins an encoded profile has learnt
// (decayed; exact when they all happened at one time).
func ProfileSignIns(data []byte) (float64, error) {
	p, err := decodeProfile(data)
	if err != nil {
		return 0, err
	}
	return p.n, nil
}
