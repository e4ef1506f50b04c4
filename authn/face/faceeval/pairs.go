package faceeval

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Pair is one comparison: two image paths and whether they show the same person.
type Pair struct {
	A, B    string
	Genuine bool
}

// ReadLFWPairs reads a pairs file in the LFW format (pairsDevTrain.txt, pairsDevTest.txt,
// pairs.txt): a header line ("N" or "folds N"), then "name i j" for a genuine pair and
// "name1 i name2 j" for an impostor pair. Images are imagesDir/name/name_%04d.jpg.
func ReadLFWPairs(pairsFile, imagesDir string) ([]Pair, error) {
	f, err := os.Open(pairsFile)
	if err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	defer f.Close()
	img := func(name, num string) (string, error) {
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return "", fmt.Errorf("bad image number %q", num)
		}
		return filepath.Join(imagesDir, name, fmt.Sprintf("%s_%04d.jpg", name, n)), nil
	}
	var pairs []Pair
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if line == 1 && len(fields) <= 2 && allNumbers(fields) {
			continue // header
		}
		var p Pair
		var ea, eb error
		switch len(fields) {
		case 3:
			p.Genuine = true
			p.A, ea = img(fields[0], fields[1])
			p.B, eb = img(fields[0], fields[2])
		case 4:
			p.A, ea = img(fields[0], fields[1])
			p.B, eb = img(fields[2], fields[3])
		default:
			return nil, fmt.Errorf("faceeval: %s:%d: want 3 or 4 fields, got %d", pairsFile, line, len(fields))
		}
		if ea != nil || eb != nil {
			return nil, fmt.Errorf("faceeval: %s:%d: %v", pairsFile, line, errorsJoin(ea, eb))
		}
		pairs = append(pairs, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("faceeval: reading %s: %w", pairsFile, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("faceeval: %s: no pairs", pairsFile)
	}
	return pairs, nil
}

func allNumbers(fs []string) bool {
	for _, f := range fs {
		if _, err := strconv.Atoi(f); err != nil {
			return false
		}
	}
	return true
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// FolderOptions controls FolderPairs.
type FolderOptions struct {
	// Impostors is the number of impostor pairs to sample; 0 means as many as there are
	// genuine pairs, at least 1,000 (capped by how many exist).
	Impostors int
	// Seed of the impostor sampling (0 means 1), so that runs are reproducible.
	Seed uint64
}

// IsImage reports whether a file name has a JPEG or PNG extension.
func IsImage(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// FolderPairs forms pairs from a one-folder-per-person directory (dir/PERSON/*.jpg|png): every
// genuine pair within each folder, and impostor pairs sampled uniformly (without repetition)
// among images of different people with a fixed seed.
func FolderPairs(dir string, opts FolderOptions) ([]Pair, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	type img struct {
		path   string
		person int
	}
	var imgs []img
	var pairs []Pair
	person := 0
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err != nil || !st.IsDir() { // follows links
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("faceeval: %w", err)
		}
		var paths []string
		for _, f := range files {
			if !f.IsDir() && IsImage(f.Name()) {
				paths = append(paths, filepath.Join(dir, e.Name(), f.Name()))
			}
		}
		slices.Sort(paths)
		for i := range paths {
			for j := i + 1; j < len(paths); j++ {
				pairs = append(pairs, Pair{A: paths[i], B: paths[j], Genuine: true})
			}
			imgs = append(imgs, img{paths[i], person})
		}
		if len(paths) > 0 {
			person++
		}
	}
	if person < 2 {
		return nil, fmt.Errorf("faceeval: %s: need at least two person folders with images, found %d", dir, person)
	}
	// Number of cross-person pairs available.
	counts := map[int]int{}
	for _, im := range imgs {
		counts[im.person]++
	}
	total := len(imgs) * (len(imgs) - 1) / 2
	for _, c := range counts {
		total -= c * (c - 1) / 2
	}
	want := opts.Impostors
	if want <= 0 {
		want = max(len(pairs), 1000)
	}
	want = min(want, total)
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	if 2*want > total { // dense: enumerate, shuffle, take
		var all []Pair
		for i := range imgs {
			for j := i + 1; j < len(imgs); j++ {
				if imgs[i].person != imgs[j].person {
					all = append(all, Pair{A: imgs[i].path, B: imgs[j].path})
				}
			}
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return append(pairs, all[:want]...), nil
	}
	seen := map[[2]int]bool{}
	for n := 0; n < want; {
		i, j := rng.IntN(len(imgs)), rng.IntN(len(imgs))
		if imgs[i].person == imgs[j].person {
			continue
		}
		if i > j {
			i, j = j, i
		}
		if seen[[2]int{i, j}] {
			continue
		}
		seen[[2]int{i, j}] = true
		pairs = append(pairs, Pair{A: imgs[i].path, B: imgs[j].path})
		n++
	}
	return pairs, nil
}
