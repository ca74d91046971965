//go:build !race

package challenge_test

const raceEnabled = false
