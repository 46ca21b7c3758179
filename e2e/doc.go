// Package e2e holds the tests that cross processes or machines: QEMU boots of the real
// image on the real Pi kernel (build tag e2e, run by `make test-e2e`), and later netns
// meshes and real peers. The package has no code of its own beyond test helpers.
package e2e
